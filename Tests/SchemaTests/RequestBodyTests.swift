import Foundation
import LibPQ
import Testing
import TestSupport

/// `flexcharge.request_body()` (migrations/0015_what_is_sent.sql), the one home of every request
/// body: for each kind, the body is exactly the expected JSON object (compared as jsonb, so key
/// order is irrelevant and every field counts, none missing and none extra).
@Suite struct RequestBodyTests {
    /// Inserts an event through the insert triggers, as the gateway does; returns its id.
    private func insert(
        _ session: PGSession, kind: String, merchant: String = "m1", order: String = "o1", channel: String = "cit",
        origin: String? = "website", site: String? = "https://shop.example", descriptor: String? = nil,
        payload: String, key: String
    ) async throws -> Int64 {
        try await insertEvent(on: session, kind: kind, merchantID: merchant, orderID: order, channel: channel,
                              origin: channel == "mit" ? nil : origin, siteURL: site, descriptor: descriptor,
                              payload: payload, idempotencyKey: key)
    }

    /// Expects the event's body, built with `mid` and `currency`, to equal `expected` as JSON.
    private func expectBody(
        _ session: PGSession, _ id: Int64, mid: String? = "MID-1", currency: String? = nil, _ expected: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let row = try await session.query(
            """
            SELECT flexcharge.request_body(o, m, $2, $3)::text AS body, flexcharge.request_body(o, m, $2, $3) = $4::jsonb AS same
              FROM flexcharge.outbox o LEFT JOIN flexcharge.merchants m ON m.merchant_id = o.merchant_id
             WHERE o.id = $1
            """, [id, mid, currency, expected]).first!
        let body: String = try row.decode("body")
        #expect(try row.decode("same", as: Bool.self), "sent \(body)\nexpected \(expected)", sourceLocation: sourceLocation)
    }

    private func enrol(_ session: PGSession, _ merchant: String, orderSource: String?, cardNotPresent: Bool) async throws {
        try await session.execute(
            """
            INSERT INTO flexcharge.merchants (merchant_id, cit_website, cit_call_center, mit, call_center_order_source,
                                              call_center_card_not_present)
            VALUES ($1, 'sandbox', 'sandbox', 'sandbox', $2, $3)
            """, [merchant, orderSource, cardNotPresent])
    }

    @Test func transmitWithASiteURLSendsTheColumnsAndTheDescriptorAsDynamicDescriptor() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await enrol(session, "m1", orderSource: "call_center", cardNotPresent: true)
            let id = try await insert(
                session, kind: "transmit", order: "T-1", descriptor: "SHOES*WEB",
                payload: #"{"isDeclined": false, "orderSource": "ecommerce", "transaction": {"amount": 1500, "currency": "USD"}, "payer": {"email": "a@example.com"}}"#,
                key: "k-t1")
            try await expectBody(session, id, """
                {"isDeclined": false, "orderSource": "ecommerce", "orderId": "T-1", "isMIT": false,
                 "siteUrl": "https://shop.example", "mid": "MID-1",
                 "transaction": {"amount": 1500, "currency": "USD", "dynamicDescriptor": "SHOES*WEB"},
                 "payer": {"email": "a@example.com"}}
                """)
        }
    }

    @Test func evaluateWithoutASiteURLSendsTheDescriptorAsTransactionDescriptor() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await enrol(session, "m1", orderSource: "call_center", cardNotPresent: true)
            // The gateway's own statement text stays the dynamicDescriptor; the column is the descriptor.
            let own = try await insert(
                session, kind: "evaluate", order: "E-1", site: nil, descriptor: "SHOES*ONLINE",
                payload: #"{"isDeclined": true, "transaction": {"amount": 2500, "dynamicDescriptor": "SHOES*ORDER17"}}"#,
                key: "k-e1")
            try await expectBody(session, own, """
                {"isDeclined": true, "orderId": "E-1", "isMIT": false, "mid": "MID-1", "idempotencyKey": "k-e1",
                 "transaction": {"amount": 2500, "descriptor": "SHOES*ONLINE", "dynamicDescriptor": "SHOES*ORDER17"}}
                """)
            let plain = try await insert(
                session, kind: "evaluate", order: "E-2", site: nil, descriptor: "SHOES*ONLINE",
                payload: #"{"transaction": {"amount": 2500}}"#, key: "k-e2")
            try await expectBody(session, plain, """
                {"orderId": "E-2", "isMIT": false, "mid": "MID-1", "idempotencyKey": "k-e2",
                 "transaction": {"amount": 2500, "descriptor": "SHOES*ONLINE", "dynamicDescriptor": "SHOES*ONLINE"}}
                """)
            // No credentials yet (no MID): no mid key rather than a null.
            try await expectBody(session, plain, mid: nil, """
                {"orderId": "E-2", "isMIT": false, "idempotencyKey": "k-e2",
                 "transaction": {"amount": 2500, "descriptor": "SHOES*ONLINE", "dynamicDescriptor": "SHOES*ONLINE"}}
                """)
        }
    }

    /// A blank site_url is no site URL (0035): the site is the descriptor, which is sent, and the merchant's
    /// override for that site applies. Blank without a descriptor is refused, as before.
    @Test(arguments: ["", "   ", "\t\n"])
    func aBlankSiteURLIsNoSiteURL(blank: String) async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await enrol(session, "m1", orderSource: nil, cardNotPresent: false)
            try await session.execute(
                "INSERT INTO flexcharge.merchant_sites (merchant_id, site, cit_website) VALUES ('m1', 'SHOES*ONLINE', 'off')")
            let id = try await insert(
                session, kind: "evaluate", order: "E-1", site: blank, descriptor: "SHOES*ONLINE",
                payload: #"{"transaction": {"amount": 2500}}"#, key: "k-e1")
            let row = try await session.query(
                """
                SELECT o.site_url IS NULL AS no_url, o.site, flexcharge.route(o.merchant_id, o.site, o.channel, o.origin) AS environment
                  FROM flexcharge.outbox o
                 WHERE o.id = $1
                """, [id]).first!
            #expect(try row.decode("no_url", as: Bool.self))
            #expect(try row.decode("site", as: String.self) == "SHOES*ONLINE")
            #expect(try row.decode("environment", as: String.self) == "off", "the site's switch, not the merchant's")
            try await expectBody(session, id, """
                {"orderId": "E-1", "isMIT": false, "mid": "MID-1", "idempotencyKey": "k-e1",
                 "transaction": {"amount": 2500, "descriptor": "SHOES*ONLINE", "dynamicDescriptor": "SHOES*ONLINE"}}
                """)
            await #expect(throws: PGError.self) {
                try await insert(session, kind: "evaluate", order: "E-2", site: blank, descriptor: nil,
                                 payload: #"{"transaction": {"amount": 2500}}"#, key: "k-e2")
            }
        }
    }

    @Test func callCenterCITCarriesTheMerchantsMarkerAndNothingElseDoes() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await enrol(session, "m1", orderSource: "moto", cardNotPresent: true)
            try await enrol(session, "m2", orderSource: nil, cardNotPresent: false)
            let payload = #"{"orderSource": "ecommerce", "transaction": {"amount": 900, "cardNotPresent": false}}"#
            let phone = try await insert(session, kind: "evaluate", order: "C-1", origin: "call_center", payload: payload, key: "k-c1")
            try await expectBody(session, phone, """
                {"orderSource": "moto", "orderId": "C-1", "isMIT": false, "siteUrl": "https://shop.example", "mid": "MID-1",
                 "idempotencyKey": "k-c1", "transaction": {"amount": 900, "cardNotPresent": true}}
                """)
            let phoneTransmit = try await insert(session, kind: "transmit", order: "C-1", origin: "call_center", payload: payload, key: "k-c2")
            try await expectBody(session, phoneTransmit, """
                {"orderSource": "moto", "orderId": "C-1", "isMIT": false, "siteUrl": "https://shop.example", "mid": "MID-1",
                 "transaction": {"amount": 900, "cardNotPresent": true}}
                """)
            // Website CIT and MIT of the same merchant: the payload as written.
            for (order, channel) in [("W-1", "cit"), ("M-1", "mit")] {
                let id = try await insert(session, kind: "evaluate", order: order, channel: channel, origin: "website",
                                          payload: payload, key: "k-\(order)")
                try await expectBody(session, id, """
                    {"orderSource": "ecommerce", "orderId": "\(order)", "isMIT": \(channel == "mit"), "siteUrl": "https://shop.example",
                     "mid": "MID-1", "idempotencyKey": "k-\(order)", "transaction": {"amount": 900, "cardNotPresent": false}}
                    """)
            }
            // A merchant whose marker sends no orderSource and cardNotPresent false.
            let other = try await insert(session, kind: "evaluate", merchant: "m2", order: "C-2", origin: "call_center",
                                         payload: #"{"transaction": {"amount": 900, "cardNotPresent": true}}"#, key: "k-c3")
            try await expectBody(session, other, """
                {"orderId": "C-2", "isMIT": false, "siteUrl": "https://shop.example", "mid": "MID-1",
                 "idempotencyKey": "k-c3", "transaction": {"amount": 900, "cardNotPresent": false}}
                """)
        }
    }

    @Test func followUpBodiesAreBuiltFromColumnsOnly() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await enrol(session, "m1", orderSource: "call_center", cardNotPresent: true)
            let cancel = try await insert(session, kind: "cancel", payload: #"{"reason": "shopper asked"}"#, key: "k-cancel")
            try await expectBody(session, cancel, #"{"idempotencyKey": "k-cancel"}"#)
            let external = try await insert(session, kind: "external_cancel", payload: "{}", key: "k-ext")
            try await expectBody(session, external, #"{"idempotencyKey": "k-ext"}"#)

            let refund = try await insert(session, kind: "refund", payload: #"{"amountCents": 1205, "refundMessage": "wrong size"}"#, key: "k-r1")
            try await expectBody(session, refund, #"{"amountToRefund": 12.05, "refundMessage": "wrong size"}"#)
            // Exact decimal dollars, as FlexCharge expects them (DollarAmount's form: two decimals).
            let whole = try await insert(session, kind: "refund", payload: #"{"amountCents": 1200, "refundMessage": 7}"#, key: "k-r2")
            try await expectBody(session, whole, #"{"amountToRefund": 12}"#)
            let text = try await session.query(
                "SELECT flexcharge.request_body(o, NULL::flexcharge.merchants, NULL, NULL)::text AS t FROM flexcharge.outbox o WHERE id = $1",
                [whole]).first!.decode("t", as: String.self)
            #expect(text == #"{"amountToRefund": 12.00}"#)

            // A capture acts on its order's FlexCharge order (claim() fills order_session_key), else the payload's.
            let capture = try await insert(session, kind: "capture", payload: #"{"amountCents": 1500, "orderSessionKey": "fc-payload"}"#, key: "k-cap")
            try await expectBody(session, capture, currency: "EUR",
                                 #"{"idempotencyKey": "k-cap", "orderId": "fc-payload", "amount": 1500, "currency": "EUR"}"#)
            try await session.execute("UPDATE flexcharge.outbox SET order_session_key = 'fc-evaluate' WHERE id = $1", [capture])
            try await expectBody(session, capture, currency: "EUR",
                                 #"{"idempotencyKey": "k-cap", "orderId": "fc-evaluate", "amount": 1500, "currency": "EUR"}"#)
        }
    }
}
