import Foundation
import LibPQ
import Testing
import TestSupport

/// migrations/0015_what_is_sent.sql at insert: a payload that disagrees with a column is refused
/// naming the field; the dedupe key makes a retried insert harmless; the gateway's new columns are
/// fixed after insert; the done-notification carries FlexCharge's order id.
@Suite struct ColumnsWinTests {
    static let refusals: [(field: String, kind: String, site: String?, descriptor: String?, payload: String)] = [
        ("payload.orderId", "evaluate", "https://shop.example", nil, #"{"orderId": "someone-else", "transaction": {"amount": 1500}}"#),
        ("payload.orderId", "refund", "https://shop.example", nil, #"{"orderId": 17, "amountCents": 100}"#),
        ("payload.isMIT", "evaluate", "https://shop.example", nil, #"{"isMIT": "true", "transaction": {"amount": 1500}}"#),
        ("payload.isMIT", "cancel", "https://shop.example", nil, #"{"isMIT": true}"#),
        ("payload.siteUrl", "transmit", "https://shop.example", nil, #"{"siteUrl": "https://other.example", "transaction": {"amount": 1500}}"#),
        ("payload.siteUrl", "transmit", nil, "SHOES", #"{"siteUrl": "https://shop.example", "transaction": {"amount": 1500}}"#),
        ("payload.transaction.descriptor", "evaluate", nil, "SHOES",
         #"{"transaction": {"amount": 1500, "descriptor": "OTHER*SHOP"}}"#),
        ("payload.transaction.descriptor", "evaluate", "https://shop.example", nil,
         #"{"transaction": {"amount": 1500, "descriptor": "SHOES"}}"#),
    ]

    @Test func aPayloadThatDisagreesWithAColumnIsRefusedNamingTheField() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            for refusal in Self.refusals {
                let error = await #expect(throws: PGError.self, "\(refusal.field)") {
                    try await insertEvent(on: session, kind: refusal.kind, orderID: "o1", siteURL: refusal.site,
                                          descriptor: refusal.descriptor, payload: refusal.payload)
                }
                #expect(error?.message.hasPrefix("flexcharge.outbox.\(refusal.field):") == true, "\(error?.message ?? "no error")")
                #expect(error?.column == refusal.field)
                #expect(error?.sqlState == "23514")
            }
            // Values that agree with the columns are accepted (and are what is sent anyway).
            try await insertEvent(on: session, kind: "evaluate", orderID: "o1", siteURL: "https://shop.example", descriptor: "SHOES",
                                  payload: #"{"orderId": "o1", "isMIT": false, "siteUrl": "https://shop.example", "transaction": {"amount": 1500, "descriptor": "SHOES"}}"#)
            try await insertEvent(on: session, kind: "transmit", orderID: "o2", channel: "mit", origin: nil, siteURL: nil, descriptor: "SHOES",
                                  payload: #"{"isMIT": true, "siteUrl": null, "transaction": {"amount": 1500}}"#)
            let count = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox").first!.decode("n", as: Int.self)
            #expect(count == 2)
        }
    }

    @Test func theDedupeKeyIsCheckedAtInsert() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            for (key, card) in [("", false), (String(repeating: "k", count: 201), false), ("order 4111 1111 1111 1111", true)] {
                let error = await #expect(throws: PGError.self) {
                    try await session.execute(
                        """
                        INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                        VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1}}', $1)
                        """, [key])
                }
                #expect(error?.column == "dedupe_key")
                #expect(error?.description.contains("4111") == false)
                if card { #expect(error?.message.contains("card number") == true) }
            }
        }
    }

    /// The gateway's login (flexcharge_gateway: no SELECT of the outbox's other columns, no UPDATE)
    /// can insert with ON CONFLICT DO NOTHING; the retry inserts nothing and returns no id. The same
    /// key under another merchant is another event.
    @Test func aRetriedInsertWithTheSameDedupeKeyInsertsNothing() async throws {
        try await TestDatabase.with { db in
            let logins = try await TestLogins(database: db)
            try await logins.create("gateway")
            let gateway = logins.session("gateway")
            let session = db.session()
            defer { Task { await gateway.close(); await session.close(); await logins.drop(["gateway"]) } }
            func insert(merchant: String, order: String) async throws -> [Int64] {
                try await gateway.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                    VALUES ('evaluate', $1, $2, 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1500}}', 'gw-evt-1')
                    ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
                    RETURNING id
                    """, [merchant, order]).rows.map { try $0.decode("id", as: Int64.self) }
            }
            let first = try await insert(merchant: "m1", order: "o1")
            #expect(first.count == 1)
            #expect(try await insert(merchant: "m1", order: "o1").isEmpty)
            #expect(try await insert(merchant: "m1", order: "o1").isEmpty)
            #expect(try await insert(merchant: "m2", order: "o1").count == 1)
            let count = try await session.query(
                "SELECT count(*) AS n FROM flexcharge.outbox WHERE merchant_id = 'm1' AND dedupe_key = 'gw-evt-1'").first!.decode("n", as: Int.self)
            #expect(count == 1)
            // Without ON CONFLICT the duplicate is an error, not a second event.
            let error = await #expect(throws: PGError.self) {
                try await gateway.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                    VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1500}}', 'gw-evt-1')
                    """)
            }
            #expect(error?.sqlState == "23505")
        }
    }

    @Test func theGatewaysNewColumnsAreFixedAfterInsert() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let id: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key, is_test)
                VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1500}}', 'd-1', true)
                RETURNING id
                """).first!.decode("id")
            for change in ["dedupe_key = 'd-2'", "dedupe_key = NULL", "is_test = false"] {
                let error = await #expect(throws: PGError.self, "\(change)") {
                    // The statement text is a constant from this list; the id is a parameter.
                    try await session.execute("UPDATE flexcharge.outbox SET \(change) WHERE id = $1", [id])
                }
                #expect(error?.message.contains("cannot change after insert") == true)
            }
            let row = try await session.query("SELECT dedupe_key, is_test FROM flexcharge.outbox WHERE id = $1", [id]).first!
            #expect(try row.decode("dedupe_key", as: String.self) == "d-1")
            #expect(try row.decode("is_test", as: Bool.self))
        }
    }

    @Test func theDoneNotificationCarriesTheOrderSessionKey() async throws {
        try await TestDatabase.with { db in
            let listener = db.session("listener")
            let session = db.session()
            defer { Task { await listener.close(); await session.close() } }
            let id = try await insertEvent(on: session, kind: "evaluate", orderID: "checkout-1")
            try await listener.listen("flexcharge_event_done")
            // What a worker's record() does when /evaluate answers CHALLENGE.
            try await session.execute(
                """
                UPDATE flexcharge.outbox SET state = 'awaiting_outcome', decision = 'CHALLENGE', order_session_key = 'fc-order-9'
                 WHERE id = $1
                """, [id])
            var received: [PGNotification] = []
            for _ in 0..<50 where received.isEmpty { received = try await listener.waitForNotifications(timeoutMilliseconds: 100) }
            #expect(received.count == 1)
            let payload = try #require(received.first.flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] })
            #expect(payload["order_session_key"] as? String == "fc-order-9")
            #expect(payload["order_id"] as? String == "checkout-1")
            #expect(payload["decision"] as? String == "CHALLENGE")
            #expect(payload["state"] as? String == "awaiting_outcome")
            #expect((payload["id"] as? NSNumber)?.int64Value == id)
        }
    }
}
