import Foundation
import LibPQ
import Testing
import TestSupport

/// flexcharge.mask_card_data / masked_payload (migrations/0024_masked_payload.sql), what the ops
/// console shows of a payload: every card-number form of the PAN corpus is masked (the guard's own
/// detector finds none left, nor the form's digits), card fields are masked whatever they hold, and
/// realistic values that are not card numbers are shown as they are.
@Suite struct MaskedPayloadTests {
    @Test func everyCardNumberFormOfTheCorpusIsMasked() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            var leaks: [String] = []
            for form in PANCorpus.refused {
                let row = try await session.query(
                    """
                    SELECT m::text AS masked, flexcharge.text_has_pan(m::text) AS has_pan
                      FROM flexcharge.mask_card_data($1::jsonb) AS m
                    """, [form.payload]).first!
                let masked: String = try row.decode("masked")
                if try row.decode("has_pan", as: Bool.self) { leaks.append("\(form.name): the guard still finds a card number") }
                // No digit run of the form's card number survives (the amount 1500 and short groups may).
                if masked.range(of: "[0-9]{13}", options: .regularExpression) != nil { leaks.append("\(form.name): \(masked.count) chars with a long digit run") }
            }
            #expect(leaks.isEmpty, "\(leaks)")
        }
    }

    @Test func cardFieldsAreMaskedAndOtherValuesKept() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let masked = try await session.query(
                """
                SELECT flexcharge.mask_card_data($1::jsonb) AS m
                """,
                [#"{"paymentMethod": {"cardNumber": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "token": true, "CVV": "123", "card_number": 42, "cardLast4Digits": "1111", "cardBinNumber": "411111", "expirationMonth": 9, "nested": {"verification-value": "999"}}, "appSecret": "s3cret", "items": [{"pan": {"x": 1}}]}"#]
            ).first!.decode("m", as: String.self)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(masked.utf8)) as? [String: Any])
            let method = try #require(object["paymentMethod"] as? [String: Any])
            #expect(method["cardNumber"] as? String == "[masked]")
            #expect(method["CVV"] as? String == "[masked]")
            #expect(method["card_number"] as? String == "[masked]")
            let nested = method["nested"] as? [String: Any]
            #expect(nested?["verification-value"] as? String == "[masked]")
            #expect(method["token"] as? Bool == true)
            #expect(method["cardLast4Digits"] as? String == "1111")
            #expect(method["cardBinNumber"] as? String == "411111")
            #expect(method["expirationMonth"] as? Int == 9)
            #expect(object["appSecret"] as? String == "[masked]")
            let item = (object["items"] as? [[String: Any]])?.first
            #expect(item?["pan"] as? String == "[masked]")

            // Realistic values that are not card numbers are shown unchanged.
            var changed: [String] = []
            for value in PANCorpus.notCards {
                let same = try await session.query(
                    "SELECT flexcharge.mask_card_data(jsonb_build_object('value', $1::text)) = jsonb_build_object('value', $1::text) AS same",
                    [value]).first!.decode("same", as: Bool.self)
                if !same { changed.append(value) }
            }
            #expect(changed.isEmpty, "\(changed)")
        }
    }

    @Test func onlyTheOperatorMayAskForAMaskedPayloadAndNobodyForTheMasker() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let grants = try await session.query(
                """
                SELECT p.proname, r.rolname, has_function_privilege(r.rolname, p.oid, 'EXECUTE') AS may
                  FROM pg_proc p CROSS JOIN pg_roles r
                 WHERE p.pronamespace = 'flexcharge'::regnamespace
                   AND p.proname IN ('masked_payload', 'mask_card_data', 'is_card_field_key')
                   AND r.rolname IN ('flexcharge_gateway', 'flexcharge_worker', 'flexcharge_operator')
                """).rows
            let allowed = try grants.filter { try $0.decode("may", as: Bool.self) }
                .map { "\(try $0.decode("proname", as: String.self)):\(try $0.decode("rolname", as: String.self))" }
            #expect(allowed == ["masked_payload:flexcharge_operator"])
        }
    }
}
