import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// What a worker sends to FlexCharge, as the sandbox received it: the columns' orderId, isMIT,
/// siteUrl and descriptor, the merchant's call-center marker on call-center CIT only, follow-up
/// bodies from the one home (migrations/0015_what_is_sent.sql); and a retried insert that sends
/// nothing twice.
@Suite struct WhatIsSentTests {
    /// The body the sandbox received for `route` whose JSON satisfies `match`.
    private func sent(_ h: WorkerHarness, _ route: String, where match: ([String: Any]) -> Bool) throws -> [String: Any] {
        let bodies = h.sandbox.sandbox.requestBodies().filter { $0.route == route }.compactMap(\.json)
        let found = bodies.first(where: match)
        return try #require(found, "no \(route) body matched among \(bodies.count)")
    }

    private func transaction(_ body: [String: Any]) -> [String: Any] { body["transaction"] as? [String: Any] ?? [:] }

    @Test func callCenterCITCarriesTheMerchantsMarkerEndToEnd() async throws {
        try await WorkerHarness.with { h in
            h.sandbox.sandbox.recordRequestBodies()
            try await h.enrol("m1")
            let store = MerchantStore(session: h.session, actor: "test")
            try await store.set("m1", site: nil, name: nil, switches: [:],
                                callCenter: CallCenterMarkerChange(orderSource: .some("moto"), cardNotPresent: true))
            // The payloads say cardNotPresent false and orderSource ecommerce: the marker wins on call-center CIT.
            func payload(_ order: String, mit: Bool = false) -> String {
                h.approvedCITEvaluate(order: order).replacingOccurrences(of: #""cardNotPresent":true"#, with: #""cardNotPresent":false"#)
                    .replacingOccurrences(of: #""isDeclined":true"#, with: #""isDeclined":true,"orderSource":"ecommerce""#)
            }
            let phone = try await h.insert("evaluate", order: "phone-1", origin: "call_center", site: nil, descriptor: "SHOES*PHONE",
                                           payload: payload("phone-1"))
            let web = try await h.insert("evaluate", order: "web-1", origin: "website", payload: payload("web-1"))
            try await h.runWorker { try await h.waitUntilSettled() }

            let phoneBody = try sent(h, "POST /evaluate") { $0["orderId"] as? String == "phone-1" }
            #expect(phoneBody["orderSource"] as? String == "moto")
            #expect(transaction(phoneBody)["cardNotPresent"] as? Bool == true)
            // No site URL: the descriptor column goes as transaction.descriptor (and dynamicDescriptor is the payload's).
            #expect(phoneBody["siteUrl"] == nil)
            #expect(transaction(phoneBody)["descriptor"] as? String == "SHOES*PHONE")
            #expect(transaction(phoneBody)["dynamicDescriptor"] as? String == "SHOES*ONLINE")
            #expect(phoneBody["isMIT"] as? Bool == false)
            #expect(phoneBody["mid"] as? String == WorkerHarness.sandboxMerchant.mid)
            let phoneKey: String = try await h.event(phone).decode("idempotency_key")
            #expect(phoneBody["idempotencyKey"] as? String == phoneKey)

            let webBody = try sent(h, "POST /evaluate") { $0["orderId"] as? String == "web-1" }
            #expect(webBody["orderSource"] as? String == "ecommerce")
            #expect(transaction(webBody)["cardNotPresent"] as? Bool == false)
            #expect(webBody["siteUrl"] as? String == "https://shop.example")
            #expect(transaction(webBody)["descriptor"] == nil)
            #expect(try await h.event(web).decode("state", as: String.self) == "succeeded")

            // The marker is the merchant's setting: changed (and audited), the next call-center event says so.
            try await store.set("m1", site: nil, name: nil, switches: [:],
                                callCenter: CallCenterMarkerChange(orderSource: .some(nil), cardNotPresent: false))
            let changes = try await store.history("m1").filter { $0.field.hasPrefix("call_center_") }.map { "\($0.field): \($0.old ?? "-") → \($0.new ?? "-")" }
            #expect(changes == ["call_center_order_source: call_center → moto", "call_center_order_source: moto → none",
                                "call_center_card_not_present: true → false"])
            try await h.insert("evaluate", order: "phone-2", origin: "call_center",
                               payload: h.approvedCITEvaluate(order: "phone-2"))
            try await h.runWorker { try await h.waitUntilSettled() }
            let second = try sent(h, "POST /evaluate") { $0["orderId"] as? String == "phone-2" }
            #expect(second["orderSource"] == nil)
            #expect(transaction(second)["cardNotPresent"] as? Bool == false)
        }
    }

    @Test func aRefundSendsTheBodyOfTheOneHome() async throws {
        try await WorkerHarness.with { h in
            h.sandbox.sandbox.recordRequestBodies()
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "r-1", payload: h.approvedCITEvaluate(order: "r-1", amount: 2000))
            try await h.insert("refund", order: "r-1", payload: #"{"amountCents": 1205, "refundMessage": "wrong size"}"#)
            try await h.runWorker { try await h.waitUntilSettled() }
            let orderSessionKey: String = try await h.event(evaluate).decode("order_session_key")
            let refunds = h.sandbox.sandbox.requestBodies().filter { $0.route == "POST /orders/{id}/refund" }
            #expect(refunds.count == 1)
            #expect(refunds.first?.pathID == orderSessionKey)
            #expect(refunds.first.map { String(decoding: $0.body, as: UTF8.self) } == #"{"refundMessage": "wrong size", "amountToRefund": 12.05}"#)
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [1205])
        }
    }

    /// A checkout LISTENs before it inserts, and learns FlexCharge's order id from the notification.
    @Test func theCheckoutsNotificationCarriesTheOrderSessionKey() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let listener = h.db.session("checkout")
            defer { Task { await listener.close() } }
            try await listener.listen("flexcharge_event_done")
            let id = try await h.insert("evaluate", order: "checkout-7", payload: h.approvedCITEvaluate(order: "checkout-7"))
            let payload = try await h.runWorker { () -> [String: Any] in
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    for notification in try await listener.waitForNotifications(timeoutMilliseconds: 100) {
                        if let object = try? JSONSerialization.jsonObject(with: Data(notification.payload.utf8)) as? [String: Any],
                           (object["id"] as? NSNumber)?.int64Value == id { return object }
                    }
                }
                throw TestSupportError("no flexcharge_event_done notification for event \(id)")
            }
            let row = try await h.event(id)
            let orderSessionKey = try #require(try row.decode("order_session_key", as: String?.self))
            #expect(payload["order_session_key"] as? String == orderSessionKey)
            #expect(payload["decision"] as? String == "APPROVED")
            #expect(payload["state"] as? String == "succeeded")
            #expect(payload["order_id"] as? String == "checkout-7")
        }
    }

    @Test func aRetriedInsertNeitherCountsNorSendsTwice() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            func insert() async throws -> Int64? {
                try await h.session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
                    VALUES ('evaluate', 'm1', 'dup-1', 'cit', 'website', 'https://shop.example', $1::jsonb, 'gateway-event-42')
                    ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
                    RETURNING id
                    """, [PGJSON(text: h.approvedCITEvaluate(order: "dup-1"))]).first?.decode("id")
            }
            let first = try await insert()
            #expect(first != nil)
            #expect(try await insert() == nil)  // the gateway lost its COMMIT's answer and inserted again
            try await h.runWorker { try await h.waitUntilSettled() }
            #expect(try await insert() == nil)  // and again, after delivery
            try await h.runWorker { try await h.waitUntilSettled() }
            let evaluates = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "dup-1" }
            #expect(evaluates.count == 1)
            let report = try await h.session.query(
                "SELECT sum(events)::bigint AS events, sum(approved)::bigint AS approved FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("events", as: Int64.self) == 1)
            #expect(try report.decode("approved", as: Int64.self) == 1)
        }
    }
}
