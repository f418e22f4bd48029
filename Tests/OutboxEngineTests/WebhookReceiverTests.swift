import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import OutboxEngine
import Testing
import TestSupport

/// `POST /webhooks/flexcharge` over loopback: signature, clock skew, replay, idempotency, recording.
@Suite struct WebhookReceiverTests {
    static func body(event: String, orderID: String, external: String = "w-1", resent: Bool = false,
                     timestamp: String = "2026-01-01T10:00:00.123Z") -> [UInt8] {
        let object: [String: Any] = [
            "Event": event, "TimeStamp": timestamp, "EventData": NSNull(), "ExternalOrderId": external, "OrderId": orderID,
            "ConfirmationId": "ABCD1234", "IsTestMode": true, "IsResent": resent,
        ]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func rfc1123(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// Signed headers for `body`, as FlexCharge sends them.
    static func signed(_ body: [UInt8], server: RunningIntegrationServer, key: String = RunningIntegrationServer.webhookKey,
                       date: Date = Date(), nonce: String = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                       contentType: String = "application/json") -> [(String, String)] {
        let headers = WebhookSignature.sign(body: body, host: server.host, date: rfc1123(date), nonce: nonce, subscriberKey: key)!
        return [("Content-Type", contentType), ("x-fc-authorization", headers.authorization),
                ("x-fc-content-sha512", headers.contentSHA512), ("x-fc-date", headers.date), ("x-fc-nonce", headers.nonce)]
    }

    /// An evaluate awaiting its outcome with FlexCharge order id `orderSessionKey`.
    static func awaitingEvaluate(_ h: WorkerHarness, order: String, orderSessionKey: String) async throws -> Int64 {
        let id = try await h.insert("evaluate", order: order, channel: "mit", payload: OutcomeLookupTests.mitEvaluate(order))
        try await h.session.execute(
            """
            UPDATE flexcharge.outbox SET state = 'awaiting_outcome', decision = 'SUBMITTED', order_session_key = $2,
                   environment = 'sandbox', attempts = 1, completed_at = now() WHERE id = $1
            """, [id, orderSessionKey])
        return id
    }

    static func count(_ h: WorkerHarness, _ table: String) async throws -> Int64 {
        try await h.session.query("SELECT count(*) AS n FROM flexcharge.\(table)").first!.decode("n")
    }

    @Test func aValidSignatureIsAcceptedAndSettlesTheEvent() async throws {
        try await WorkerHarness.with { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-order-1")
            let listener = h.db.session("listener")
            defer { Task { await listener.close() } }
            try await listener.listen("flexcharge_event_done")
            let body = Self.body(event: "order.completed", orderID: "fc-order-1")
            let reply = try await server.post("/webhooks/flexcharge?merchant=m1", headers: Self.signed(body, server: server), body: body)
            #expect(reply.status == 200)
            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            let outcome = try await h.session.query("SELECT * FROM flexcharge.outcome_events").rows
            #expect(outcome.count == 1)
            #expect(try outcome[0].decode("event_id", as: Int64?.self) == id)
            #expect(try outcome[0].decode("environment", as: String?.self) == "sandbox")
            #expect(try outcome[0].decode("decision", as: String?.self) == "APPROVED")
            var payloads: [String] = []
            for _ in 0..<10 where payloads.isEmpty { payloads = try await listener.waitForNotifications(timeoutMilliseconds: 100).map(\.payload) }
            #expect(payloads.contains { $0.contains("\"decision\" : \"APPROVED\"") })
        }
    }

    @Test func badDeliveriesAreRefusedWith401AndNothingIsRecorded() async throws {
        try await WorkerHarness.with { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-order-1")
            let body = Self.body(event: "order.completed", orderID: "fc-order-1")
            let otherKey = Data("some-other-key".utf8).base64EncodedString()
            let cases: [(String, String, [(String, String)], [UInt8])] = [
                ("wrong key", "/webhooks/flexcharge?merchant=m1", Self.signed(body, server: server, key: otherKey), body),
                ("body changed after signing", "/webhooks/flexcharge?merchant=m1", Self.signed(body, server: server),
                 Self.body(event: "order.completed", orderID: "fc-order-2")),
                ("stale date", "/webhooks/flexcharge?merchant=m1", Self.signed(body, server: server, date: Date().addingTimeInterval(-600)), body),
                ("date in the future", "/webhooks/flexcharge?merchant=m1", Self.signed(body, server: server, date: Date().addingTimeInterval(600)), body),
                ("unknown merchant", "/webhooks/flexcharge?merchant=nobody", Self.signed(body, server: server), body),
                ("no merchant", "/webhooks/flexcharge", Self.signed(body, server: server), body),
                ("no signature", "/webhooks/flexcharge?merchant=m1", [("Content-Type", "application/json")], body),
            ]
            for (name, path, headers, sentBody) in cases {
                let reply = try await server.post(path, headers: headers, body: sentBody)
                #expect(reply.status == 401, "\(name)")
            }
            #expect(try await Self.count(h, "outcome_events") == 0)
            #expect(try await Self.count(h, "webhook_nonces") == 0)
            #expect(try await h.event(id).decode("state", as: String.self) == "awaiting_outcome")
        }
    }

    @Test func aReusedNonceIsRefusedAndARedeliveryIsRecordedOnce() async throws {
        try await WorkerHarness.with { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-order-1")
            let body = Self.body(event: "order.expired", orderID: "fc-order-1")
            let headers = Self.signed(body, server: server)
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: headers, body: body).status == 200)
            // The same request again (captured and replayed): same nonce.
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: headers, body: body).status == 401)
            // FlexCharge redelivers (IsResent, new nonce): accepted, recorded once, counted.
            let resent = Self.body(event: "order.expired", orderID: "fc-order-1", resent: true)
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: Self.signed(resent, server: server), body: resent).status == 200)
            let rows = try await h.session.query("SELECT deliveries FROM flexcharge.outcome_events").rows
            #expect(rows.count == 1)
            #expect(try rows.first?.decode("deliveries", as: Int.self) == 2)
            #expect(try await h.event(id).decode("decision", as: String?.self) == "EXPIRED")
        }
    }

    @Test func nonJSONContentTypeAndFollowUpEventsAreRecordedAgainstTheEvent() async throws {
        try await WorkerHarness.with { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-order-1")
            let completed = Self.body(event: "order.completed", orderID: "fc-order-1")
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1",
                                          headers: Self.signed(completed, server: server, contentType: "text/plain; charset=utf-8"),
                                          body: completed).status == 200)
            for event in ["order.refunded", "payment.chargeback.received", "challenge.presented"] {
                let body = Self.body(event: event, orderID: "fc-order-1")
                #expect(try await server.post("/webhooks/flexcharge?merchant=m1",
                                              headers: Self.signed(body, server: server, contentType: "application/x-www-form-urlencoded"),
                                              body: body).status == 200)
            }
            // A webhook for an order we never evaluated: recorded with no event, answered 200 (no endless redelivery).
            let stranger = Self.body(event: "order.cancelled", orderID: "fc-unknown", external: "never-seen")
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: Self.signed(stranger, server: server), body: stranger).status == 200)
            // Signed but not a webhook body: 400, nothing recorded for it.
            let junk = Array("not json at all".utf8)
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: Self.signed(junk, server: server, contentType: "text/plain"), body: junk).status == 400)

            let rows = try await h.session.query(
                "SELECT fc_event, event_id FROM flexcharge.order_outcomes ORDER BY id").rows
            #expect(try rows.map { try $0.decode("fc_event", as: String.self) } ==
                    ["order.completed", "order.refunded", "payment.chargeback.received", "challenge.presented", "order.cancelled"])
            #expect(try rows.prefix(4).allSatisfy { try $0.decode("event_id", as: Int64?.self) == id })
            #expect(try rows[4].decode("event_id", as: Int64?.self) == nil)
            // Later events never change a final decision.
            let row = try await h.event(id)
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
        }
    }

    @Test func managedMITEndToEndSubmittedThenWebhookThenApprovedInTheReport() async throws {
        try await WorkerHarness.with(configure: { configuration in
            configuration.merchants[0].webhookSubscriberKey = RunningIntegrationServer.webhookKey
            configuration.webhookContentType = "text/plain"
        }) { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            h.sandbox.sandbox.setWebhookURL(server.webhookURL + "?merchant=m1", forMid: WorkerHarness.sandboxMerchant.mid)
            let id = try await h.insert("evaluate", order: "mit-wh", channel: "mit", payload: OutcomeLookupTests.mitEvaluate("mit-wh"))
            // Default polling (first lookup after 60 s): only the webhook can settle it here.
            try await h.runWorker {
                try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [id])
                let key: String = try await h.event(id).decode("order_session_key")
                #expect(h.sandbox.sandbox.completeOrder(id: key))
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [id])
            }
            #expect(try await h.event(id).decode("decision", as: String?.self) == "APPROVED")
            let report = try await h.session.query("SELECT approved, pending FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("approved", as: Int64.self) == 1)
            #expect(try report.decode("pending", as: Int64.self) == 0)
            #expect(try await h.attempts(id).allSatisfy { try $0.decode("action", as: String.self) == "send" })
            let sources = try await h.session.query("SELECT source, fc_event FROM flexcharge.outcome_events").rows
            #expect(try sources.map { try $0.decode("source", as: String.self) } == ["webhook"])
            #expect(h.sandbox.sandbox.ledger().webhooks.allSatisfy { $0.httpStatus == 200 })
        }
    }
}
