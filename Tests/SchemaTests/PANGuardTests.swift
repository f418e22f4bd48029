import Foundation
import LibPQ
import Testing
import TestSupport

/// The PAN guard of the insert trigger (migrations/0009_insert_boundary.sql): card numbers in any
/// disguise are refused with the field's path and without the number; realistic non-card values pass.
@Suite struct PANGuardTests {
    @Test func everyCardNumberFormIsRefusedWithItsFieldAndWithoutTheNumber() async throws {
        #expect(PANCorpus.refused.count >= 50)
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            var refused = 0
            for form in PANCorpus.refused {
                let error = await #expect(throws: PGError.self, "\(form.name)") {
                    try await insertEvent(
                        on: session, kind: form.columns["kind"] ?? "evaluate",
                        siteURL: form.columns["site_url"] ?? "https://shop.example", descriptor: form.columns["descriptor"],
                        payload: form.payload, idempotencyKey: form.columns["idempotency_key"])
                }
                guard let error else { continue }
                #expect(error.sqlState == "23514", "\(form.name): \(error.sqlState ?? "-")")
                #expect(error.message.hasPrefix("flexcharge.outbox.\(form.field): holds a plaintext card number"),
                        "\(form.name): the error names another field or problem")
                #expect(error.column == form.field, "\(form.name)")
                #expect(!holdsDigitRun(error.message) && !holdsDigitRun(error.column ?? ""), "\(form.name): digits in the error")
                if error.message.hasPrefix("flexcharge.outbox.\(form.field):") { refused += 1 }
            }
            let stored = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox").first!.decode("n", as: Int.self)
            #expect(stored == 0)
            print("PAN guard: \(refused) of \(PANCorpus.refused.count) card-number forms refused with their field")
        }
    }

    @Test func realisticValuesThatAreNotCardNumbersPass() async throws {
        #expect(PANCorpus.notCards.count + PANCorpus.notCardNumbers.count >= 100)
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            var refused: [String] = []
            var tried = 0
            for value in PANCorpus.notCards {
                for (index, place) in ["payload", "descriptor"].enumerated() where index == 0 || value.count <= 64 {
                    tried += 1
                    do {
                        if place == "payload" {
                            try await session.query(
                                """
                                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                                VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example',
                                        jsonb_build_object('transaction', jsonb_build_object('amount', 1500), 'value', $1::text))
                                """, [value])
                        } else {
                            try await insertEvent(on: session, siteURL: nil, descriptor: value)
                        }
                    } catch let error as PGError {
                        refused.append("\(place): \(error.message)")
                    }
                }
            }
            for number in PANCorpus.notCardNumbers {
                tried += 1
                do {
                    try await insertEvent(on: session, payload: #"{"transaction": {"amount": 1500}, "value": \#(number)}"#)
                } catch let error as PGError {
                    refused.append("number: \(error.message)")
                }
            }
            let rate = Double(refused.count) / Double(tried) * 100
            print("PAN guard: false positives \(refused.count) of \(tried) realistic non-card values (\(String(format: "%.2f", rate)) %)")
            #expect(refused.isEmpty, "refused: \(refused)")
        }
    }

    /// Random values of kinds a payload carries, a few thousand each: the rate at which the guard
    /// takes them for card numbers, printed. Random 16-digit numbers are refused at the rate real
    /// card numbers occur among them (a card prefix and a valid Luhn check): no rule can tell them apart.
    @Test func falsePositiveRatesOfGeneratedValuesArePrinted() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let rows = try await session.query(
                """
                WITH g AS (SELECT i FROM generate_series(1, 2000) i),
                samples AS (
                    SELECT 'epoch milliseconds' AS category, (1500000000000 + floor(random() * 300000000000))::bigint::text AS v FROM g
                    UNION ALL SELECT 'epoch microseconds', (1500000000000000 + floor(random() * 300000000000000))::bigint::text FROM g
                    UNION ALL SELECT 'UUID v4', gen_random_uuid()::text FROM g
                    UNION ALL SELECT 'phone +49 15x xxxxxxxx', '+49 15' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') FROM g
                    UNION ALL SELECT 'phone 49 15xx xxxxxxx (no +)', '49 15' || lpad(floor(random() * 1e2)::bigint::text, 2, '0') || ' ' || lpad(floor(random() * 1e7)::bigint::text, 7, '0') FROM g
                    UNION ALL SELECT 'phone (xxx) xxx-xxxx', format('(%s) %s-%s', 200 + floor(random() * 799)::int, 200 + floor(random() * 799)::int, lpad(floor(random() * 1e4)::int::text, 4, '0')) FROM g
                    UNION ALL SELECT 'EAN-13 40-49 (valid check digit)', e || ((10 - (SELECT sum(substr(e, k, 1)::int * CASE WHEN k % 2 = 0 THEN 3 ELSE 1 END) FROM generate_series(1, 12) k) % 10) % 10)::text
                        FROM (SELECT (40 + floor(random() * 10))::int::text || lpad(floor(random() * 1e10)::bigint::text, 10, '0') AS e FROM g) x
                    UNION ALL SELECT 'IBAN DE, grouped', regexp_replace(iban, '(.{4})', '\\1 ', 'g') FROM (
                        SELECT 'DE' || lpad((98 - ((bban || '131400')::numeric % 97))::int::text, 2, '0') || bban AS iban
                          FROM (SELECT lpad(floor(random() * 1e9)::bigint::text, 9, '0') || lpad(floor(random() * 1e9)::bigint::text, 9, '0') AS bban FROM g) b) x
                    UNION ALL SELECT 'IBAN DE, unspaced', 'DE' || lpad((98 - ((bban || '131400')::numeric % 97))::int::text, 2, '0') || bban
                          FROM (SELECT lpad(floor(random() * 1e9)::bigint::text, 9, '0') || lpad(floor(random() * 1e9)::bigint::text, 9, '0') AS bban FROM g) b
                    UNION ALL SELECT 'tracking 9400 + 18 digits', '9400' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') || lpad(floor(random() * 1e9)::bigint::text, 9, '0') FROM g
                    UNION ALL SELECT 'tracking, 20 random digits', lpad(floor(random() * 1e10)::bigint::text, 10, '0') || lpad(floor(random() * 1e10)::bigint::text, 10, '0') FROM g
                    UNION ALL SELECT 'coordinates "lat lon"', round((random() * 180 - 90)::numeric, 7)::text || ' ' || round((random() * 360 - 180)::numeric, 7)::text FROM g
                    UNION ALL SELECT 'order id yyyyMMdd + 8 digits', to_char(now() - random() * interval '900 days', 'YYYYMMDD') || lpad(floor(random() * 1e8)::bigint::text, 8, '0') FROM g
                    UNION ALL SELECT 'order id, 16 random digits', (1000000000000000 + floor(random() * 9000000000000000))::bigint::text FROM g
                )
                SELECT category, count(*) AS n, count(*) FILTER (WHERE flexcharge.text_has_pan(v)) AS refused
                  FROM samples GROUP BY category ORDER BY category
                """)
            for row in rows.rows {
                let category: String = try row.decode("category")
                let n: Int = try row.decode("n"), refused: Int = try row.decode("refused")
                print("PAN guard, generated: \(category): \(refused) of \(n) refused (\(String(format: "%.2f", Double(refused) / Double(n) * 100)) %)")
                if category.hasPrefix("epoch") || category.hasPrefix("UUID") || category.hasPrefix("phone") || category.hasPrefix("IBAN")
                    || category.hasPrefix("EAN") || category.contains("yyyyMMdd") {
                    #expect(refused == 0, "\(category)")
                }
            }
        }
    }

    /// The guard's cost per insert: the median server time of single-row inserts of a realistic
    /// evaluate (~1.1 KB, a tokenized card, accented names), with the insert trigger and without it.
    /// Printed, not asserted (the machine is shared).
    @Test func costPerInsertIsPrinted() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let payload = #"{"transaction": {"id": "3478613", "amount": 1999, "currency": "USD", "timestampUtc": "2026-11-27T10:15:30.123Z", "timezoneUtcOffset": 0, "responseCode": "05", "responseCodeSource": "nmi", "avsResultCode": "Y", "cvvResultCode": "M", "cavvResultCode": "NA", "cardNotPresent": true, "responseDescription": "Do not honor", "dynamicDescriptor": "SHOES-R-US"}, "paymentMethod": {"token": true, "cardNumber": "d3e10716-6aac-4eb8-a74d-c1a3027f1d96", "holderName": "Jos\u00e9 M\u00fcller", "cardType": "CREDIT", "cardBrand": "VISA", "cardCountry": "US", "expirationMonth": 12, "expirationYear": 2028, "cardBinNumber": "411111", "cardLast4Digits": "1111"}, "payer": {"email": "jose@example.com", "phone": "+1 (555) 123-4567", "id": "cust-100045678"}, "billingInformation": {"firstName": "Jos\u00e9", "lastName": "M\u00fcller", "country": "US", "countryCode": "US", "addressLine1": "1600 Amphitheatre Pkwy", "city": "Mountain View", "state": "CA", "zipcode": "94043"}, "orderItems": [{"sku": "SKU-1001", "name": "Running shoes", "quantity": 1, "amount": 1999}], "customerIp": "203.0.113.7", "senseKey": "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d", "expiryDateUtc": "2026-12-03T10:15:30Z"}"#
            func medianMicroseconds(_ sql: String, _ parameters: [any PGEncodable]) async throws -> Double {
                var times: [Double] = []
                for _ in 0..<300 {
                    let plan = try await session.query("EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) " + sql, parameters)
                    let text: String = try plan.first!.decode("QUERY PLAN")
                    let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
                    times.append((json[0]["Execution Time"] as! Double) * 1000)
                }
                return times.sorted()[times.count / 2]
            }
            let guarded = try await medianMicroseconds(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('transmit', 'm1', 'o1', 'cit', 'website', 'https://shoes.example', $1::jsonb)
                """, [payload])
            try await session.execute("ALTER TABLE flexcharge.outbox DISABLE TRIGGER outbox_before_insert")
            let plain = try await medianMicroseconds(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, idempotency_key, lane, claim_lane)
                VALUES ('transmit', 'm1', 'o1', 'cit', 'website', 'https://shoes.example', $1::jsonb, gen_random_uuid()::text, 3, 3)
                """, [payload])
            try await session.execute("ALTER TABLE flexcharge.outbox ENABLE TRIGGER outbox_before_insert")
            print("Insert guard cost: median \(String(format: "%.0f", guarded)) µs per insert with the insert trigger, \(String(format: "%.0f", plain)) µs without (\(String(format: "%.0f", guarded - plain)) µs for the checks), payload \(payload.utf8.count) bytes, 300 inserts each")
        }
    }
}
