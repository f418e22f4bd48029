import Foundation
import LibPQ
import Testing
import TestSupport

/// What migrations/0022_insert_cost.sql relies on to make the insert cheaper, and that the merged
/// insert trigger, with its quick tests before the PAN and credential guards, refuses what it did.
@Suite struct InsertCostTests {
    /// A realistic ~1 KB payload around each test value: 13-digit runs (epoch milliseconds, a German
    /// mobile number) that the PAN guard's quick test now lets through, a UUID token, accented names.
    static let surroundings = #"""
        {"isDeclined": true, "orderSource": "ecommerce",
         "transaction": {"id": "psp-ord-0001234", "timestampUtc": "2026-11-27T10:15:30.123Z", "processedAtMs": 1764620012345,
                         "amount": 1999, "currency": "EUR", "responseCode": "05", "responseCodeSource": "NMI",
                         "avsResultCode": "M", "cvvResultCode": "M", "cavvResultCode": "NA", "cardNotPresent": true},
         "payer": {"email": "jose@example.com", "phone": "+49 151 12345678", "id": "customer-100045678"},
         "billingInformation": {"firstName": "Jos\u00e9", "lastName": "M\u00fcller", "country": "Germany", "countryCode": "DE",
                                "addressLine1": "Hauptstra\u00dfe 1", "city": "Berlin", "zipcode": "10115"},
         "orderItems": [{"sku": "SKU-1001", "name": "Running shoes", "quantity": 1, "amount": 1999}],
         "customerIp": "198.51.100.166", "senseKey": "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d",
         "paymentMethod": {"token": true, "cardNumber": "d3e10716-6aac-4eb8-a74d-c1a3027f1d96", "cardBrand": "VISA",
                           "cardBinNumber": "411111", "cardLast4Digits": "1111", "expirationMonth": 12, "expirationYear": 2028}}
        """#

    /// 0022 lets the guard skip texts without a run of 14 digits: no 13-digit number has a card
    /// brand's prefix and length, whatever its first four digits (every one of the 10 000 is tried).
    @Test func noThirteenDigitNumberHasACardBrandsLength() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let row = try await session.query(
                """
                SELECT count(*) AS tried,
                       count(*) FILTER (WHERE flexcharge.card_brand_length_ok(lpad(p::text, 4, '0') || '000000000')) AS brand,
                       count(*) FILTER (WHERE flexcharge.card_brand_length_ok(lpad(p::text, 4, '0') || '000000000000')) AS sixteen
                  FROM generate_series(0, 9999) AS p
                """).first!
            #expect(try row.decode("tried", as: Int.self) == 10_000)
            #expect(try row.decode("brand", as: Int.self) == 0)
            #expect(try row.decode("sixteen", as: Int.self) > 0)  // the same prefixes with 16 digits are card numbers' shapes
        }
    }

    /// Every card-number form of the corpus, inside a realistic payload full of other digits, is
    /// still refused with its field and without the number; the payload alone is accepted.
    @Test func everyCorpusFormIsRefusedInsideARealisticPayload() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await insertEvent(on: session, orderID: "plain", payload: Self.surroundings)
            var refused = 0
            for form in PANCorpus.refused {
                let error = await #expect(throws: PGError.self, "\(form.name)") {
                    try await session.query(
                        """
                        INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload, idempotency_key)
                        VALUES ($1, 'm1', 'o1', 'cit', 'website', $2, $3, $4::jsonb || $5::jsonb, $6)
                        """,
                        [form.columns["kind"] ?? "evaluate", form.columns["site_url"] ?? "https://shop.example",
                         form.columns["descriptor"], Self.surroundings, form.payload, form.columns["idempotency_key"]])
                }
                guard let error else { continue }
                #expect(error.message.hasPrefix("flexcharge.outbox.\(form.field): holds a plaintext card number"), "\(form.name): \(error.message)")
                #expect(!holdsDigitRun(error.message), "\(form.name): digits in the error")
                if error.column == form.field { refused += 1 }
            }
            #expect(refused == PANCorpus.refused.count)
            let stored = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox").first!.decode("n", as: Int.self)
            #expect(stored == 1)
        }
    }

    /// The dedupe key is checked by the same quick test (0022 joins it to the other checked text).
    @Test func aCardNumberInTheDedupeKeyIsRefusedBesideARealisticPayload() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            for key in ["4111 1111 1111 1111", "order-5555-5555-5555-4444", "3056 930902 5904"] {
                let error = await #expect(throws: PGError.self, "\(key)") {
                    try await session.query(
                        """
                        INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                        VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', $1::jsonb, $2)
                        """, [Self.surroundings, key])
                }
                #expect(error?.column == "dedupe_key")
            }
            try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', $1::jsonb, 'gw-1764620012345-+49 151 12345678')
                """, [Self.surroundings])
        }
    }

    /// An evaluate raises its order's earlier pending follow-up (0014's rule, now run inside the
    /// trigger for evaluates only); a follow-up or a transmit raises nothing, and transmits stay in lane 3.
    @Test func onlyEvaluatesRaiseTheirOrdersEarlierEvents() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let transmit = try await insertEvent(on: session, kind: "transmit", orderID: "A")
            let cancel = try await insertEvent(on: session, kind: "cancel", orderID: "A", payload: "{}")
            let refund = try await insertEvent(on: session, kind: "refund", orderID: "A", payload: #"{"amountCents": 100}"#)
            let other = try await insertEvent(on: session, kind: "cancel", orderID: "B", payload: "{}")
            func claimLanes() async throws -> [Int64: Int] {
                var lanes: [Int64: Int] = [:]
                for row in try await session.query("SELECT id, claim_lane FROM flexcharge.outbox").rows {
                    lanes[try row.decode("id")] = try row.decode("claim_lane", as: Int.self)
                }
                return lanes
            }
            #expect(try await claimLanes() == [transmit: 3, cancel: 2, refund: 2, other: 2])
            let mit = try await insertEvent(on: session, orderID: "A", channel: "mit", origin: nil)
            #expect(try await claimLanes() == [transmit: 3, cancel: 1, refund: 1, other: 2, mit: 1])
            let cit = try await insertEvent(on: session, orderID: "A")
            #expect(try await claimLanes() == [transmit: 3, cancel: 0, refund: 0, other: 2, mit: 0, cit: 0])
        }
    }
}
