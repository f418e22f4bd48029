import Foundation
import LibPQ
import Testing
import TestSupport

/// What SQL can check is checked when the gateway inserts, with a message that names the field.
@Suite struct InsertGuardTests {
    static let good: [String: String?] = [
        "kind": "evaluate", "merchant_id": "m1", "order_id": "o1", "channel": "cit", "origin": "website",
        "site_url": "https://shop.example", "descriptor": nil,
        "payload": #"{"transaction": {"amount": 1500}, "paymentMethod": {"cardNumber": "tok_abc", "token": true}}"#,
        "idempotency_key": nil,
    ]

    static let rejections: [(field: String, change: [String: String?])] = [
        ("kind", ["kind": "charge"]),
        ("merchant_id", ["merchant_id": ""]),
        ("order_id", ["order_id": nil]),
        ("channel", ["channel": "web"]),
        ("origin", ["origin": nil]),
        ("origin", ["channel": "mit", "origin": "website"]),
        ("site_url", ["site_url": nil, "descriptor": nil]),
        ("payload", ["payload": "[1, 2]"]),
        ("payload.AppSecret", ["payload": #"{"transaction": {"amount": 1500}, "AppSecret": "x"}"#]),
        ("payload.merchant.appKey", ["payload": #"{"transaction": {"amount": 1500}, "merchant": {"appKey": "x"}}"#]),
        ("payload.amountCents", ["kind": "capture", "payload": #"{"amountCents": 0}"#]),
        ("payload.currency", ["kind": "capture", "payload": #"{"amountCents": 100, "currency": "usd"}"#]),
        ("payload.payer.notes", ["payload": #"{"transaction": {"amount": 1500}, "payer": {"notes": "card 4111 1111 1111 1111"}}"#]),
        ("payload.paymentMethod.cardNumber", ["payload": #"{"transaction": {"amount": 1500}, "paymentMethod": {"cardNumber": "4111111111111111", "token": true}}"#]),
        ("descriptor", ["descriptor": "SHOP 4111111111111111"]),
        ("payload.transaction.amount", ["payload": #"{"transaction": {"amount": "15.00"}}"#]),
        ("payload.transaction.amount", ["payload": #"{"transaction": {"amount": 15.5}}"#]),
        ("payload.isMIT", ["payload": #"{"isMIT": true, "transaction": {"amount": 1500}}"#]),
        ("payload.paymentMethod.cardNumber", ["payload": #"{"transaction": {"amount": 1500}, "paymentMethod": {"cardNumber": "4111 1111 1111 1111"}}"#]),
        ("payload.paymentMethod.cardNumber", ["payload": #"{"transaction": {"amount": 1500}, "paymentMethod": {"cardNumber": "4000-0027-6000-3184", "token": false}}"#]),
        ("payload.cards[1].pan", ["payload": #"{"transaction": {"amount": 1500}, "cards": [{"pan": "x"}, {"pan": 5555555555554444}]}"#]),
        ("payload.amountCents", ["kind": "refund", "payload": #"{"amountCents": 0}"#]),
        ("idempotency_key", ["idempotency_key": "k1", "payload": #"{"transaction": {"amount": 1500}, "idempotencyKey": "k2"}"#]),
    ]

    @Test func everyRejectionNamesTheField() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await insert(Self.good, on: session)  // the baseline is accepted
            for (field, change) in Self.rejections {
                let row = Self.good.merging(change) { $1 }
                let error = await #expect(throws: PGError.self, "\(field)") { try await insert(row, on: session) }
                #expect(error?.message.hasPrefix("flexcharge.outbox.\(field):") == true, "\(error?.message ?? "no error") for \(field)")
                #expect(error?.column == field)
                #expect(error?.sqlState == "23514")
                // The card number itself never appears in the error.
                #expect(error?.description.contains("4111") == false)
                #expect(error?.description.contains("5555555555554444") == false)
            }
            let count = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox").first!.decode("n", as: Int.self)
            #expect(count == 1)
        }
    }

    @Test func theIdempotencyKeyIsGeneratedOrTakenFromThePayloadAndThenFixed() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let generated = try await insert(Self.good, on: session)
            let fromPayload = try await insert(
                Self.good.merging(["payload": #"{"transaction": {"amount": 1500}, "idempotencyKey": "gateway-key-1"}"#]) { $1 }, on: session)
            let keys = try await session.query(
                "SELECT id, idempotency_key FROM flexcharge.outbox ORDER BY id").rows.map { try $0.decode("idempotency_key", as: String.self) }
            #expect(UUID(uuidString: keys[0]) != nil)
            #expect(keys[1] == "gateway-key-1")
            await #expect(throws: PGError.self) {
                try await session.execute("UPDATE flexcharge.outbox SET idempotency_key = 'other' WHERE id = $1", [generated])
            }
            await #expect(throws: PGError.self) {
                try await session.execute("UPDATE flexcharge.outbox SET payload = '{}'::jsonb WHERE id = $1", [fromPayload])
            }
        }
    }

    @Test func anInsertWakesListenersAtCommit() async throws {
        try await TestDatabase.with { db in
            let listener = db.session("listener")
            let session = db.session()
            defer { Task { await listener.close(); await session.close() } }
            try await listener.listen("flexcharge_outbox")
            try await session.withTransaction { tx in
                try tx.execute(
                    "INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, site_url, payload) VALUES ('evaluate', 'm', 'o', 'mit', 's', '{\"transaction\": {\"amount\": 100}}')")
            }
            var received: [PGNotification] = []
            for _ in 0..<20 where received.isEmpty { received = try await listener.waitForNotifications(timeoutMilliseconds: 100) }
            #expect(received.map(\.payload) == ["1"])  // the lane: mit_evaluate (0026: only evaluates notify)
        }
    }

    @discardableResult
    private func insert(_ row: [String: String?], on session: PGSession) async throws -> Int64 {
        try await session.query(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload, idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) RETURNING id
            """,
            ["kind", "merchant_id", "order_id", "channel", "origin", "site_url", "descriptor", "payload", "idempotency_key"]
                .map { row[$0] ?? nil }
        ).first!.decode("id")
    }
}
