import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import Logging
@testable import OutboxEngine
import Testing
import TestSupport

/// `POST /webhooks/flexcharge` over loopback: signature, clock skew, replay, idempotency, recording.
@Suite struct WebhookReceiverTests {
    static func body(event: String, orderID: String, external: String = "w-1", resent: Bool = false,
                     timestamp: String = "2026-01-01T10:00:00.123Z", isTestMode: Bool? = true) -> [UInt8] {
        var object: [String: Any] = [
            "Event": event, "TimeStamp": timestamp, "EventData": NSNull(), "ExternalOrderId": external, "OrderId": orderID,
            "ConfirmationId": "ABCD1234", "IsResent": resent,
        ]
        if let isTestMode { object["IsTestMode"] = isTestMode }
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Signed headers for `body`, as FlexCharge sends them.
    static func signed(_ body: [UInt8], server: RunningIntegrationServer, key: String = RunningIntegrationServer.webhookKey,
                       date: Date = Date(), nonce: String = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                       contentType: String = "application/json") -> [(String, String)] {
        let headers = WebhookSignature.sign(body: body, host: server.host, date: HTTPDate.format(date), nonce: nonce, subscriberKey: key)!
        return [("Content-Type", contentType), ("x-fc-authorization", headers.authorization),
                ("x-fc-content-sha512", headers.contentSHA512), ("x-fc-date", headers.date), ("x-fc-nonce", headers.nonce)]
    }

    /// An evaluate awaiting its outcome with FlexCharge order id `orderSessionKey` (nil: it never got one).
    static func awaitingEvaluate(_ h: WorkerHarness, order: String, orderSessionKey: String?,
                                 environment: String = "sandbox") async throws -> Int64 {
        let id = try await h.insert("evaluate", order: order, channel: "mit", payload: OutcomeLookupTests.mitEvaluate(order))
        try await h.session.execute(
            """
            UPDATE flexcharge.outbox SET state = 'awaiting_outcome', decision = 'SUBMITTED', order_session_key = $2,
                   environment = $3, attempts = 1, completed_at = now() WHERE id = $1
            """, [id, orderSessionKey, environment])
        return id
    }

    static let sandboxKey = Data("the-merchants-SANDBOX-subscriber-key".utf8).base64EncodedString()
    static let productionKey = Data("the-merchants-PRODUCTION-subscriber-key".utf8).base64EncodedString()

    /// Enrols `merchantID` with a different webhook key per environment (as FlexCharge's portals give them).
    static func enrolWithTwoWebhookKeys(_ h: WorkerHarness, _ merchantID: String = "m1") async throws {
        let store = MerchantStore(session: h.session, actor: "test")
        try await store.add(merchantID, name: nil, switches: [.citWebsite: .production, .mit: .production])
        let sealer = try CredentialSealer(keyBytes: WorkerHarness.keyBytes)
        for (environment, key) in [("sandbox", sandboxKey), ("production", productionKey)] {
            try await store.setCredentials(
                merchantID, environment: environment, mid: WorkerHarness.sandboxMerchant.mid,
                secrets: MerchantSecrets(appKey: "k", appSecret: "s", webhookKey: key), sealer: sealer)
        }
    }

    static func state(_ h: WorkerHarness, _ id: Int64) async throws -> String {
        let row = try await h.event(id)
        return "\(try row.decode("state", as: String.self)) \(try row.decode("decision", as: String?.self) ?? "-")"
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

    /// After approval, `order.cancelled` and `payment.chargeback.received` change no decision but the
    /// money: the cancellation reverses the order (one row in money_adjustments naming the webhook's
    /// outcome_events row), a redelivery and the later chargeback reverse nothing more, and the
    /// report's net goes to zero while its gross stays.
    @Test func aCancellationAfterApprovalAdjustsTheMoneyOnceAndNamesItsWebhook() async throws {
        try await WorkerHarness.with { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-order-1")
            let path = "/webhooks/flexcharge?merchant=m1"
            for (event, resent, timestamp) in [("order.completed", false, "2026-01-01T10:00:00.1Z"), ("order.cancelled", false, "2026-01-01T11:00:00.1Z"),
                                               ("order.cancelled", true, "2026-01-01T11:00:00.1Z"),
                                               ("payment.chargeback.received", false, "2026-01-02T09:00:00.1Z")] {
                let body = Self.body(event: event, orderID: "fc-order-1", resent: resent, timestamp: timestamp)
                #expect(try await server.post(path, headers: Self.signed(body, server: server), body: body).status == 200)
            }
            #expect(try await Self.state(h, id) == "succeeded APPROVED")
            let cancellation = try await h.session.query(
                "SELECT id FROM flexcharge.outcome_events WHERE fc_event = 'order.cancelled'").first!.decode(0, as: Int64.self)
            let adjustments = try await h.session.query(
                "SELECT kind, amount_cents, source, source_outcome_id, evaluate_id FROM flexcharge.money_adjustments ORDER BY adjusted_at").rows
            #expect(try adjustments.map { "\(try $0.decode("kind", as: String.self)) \(try $0.decode("amount_cents", as: Int64?.self) ?? -1)" }
                    == ["cancellation 1200", "chargeback 0"])
            #expect(try adjustments[0].decode("source", as: String.self) == "webhook")
            #expect(try adjustments[0].decode("source_outcome_id", as: Int64?.self) == cancellation)
            #expect(try adjustments[0].decode("evaluate_id", as: Int64.self) == id)
            let report = try await h.session.query(
                "SELECT approved, approved_cents, cancelled_cents, chargeback_cents, net_cents FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("approved", as: Int64.self) == 1)
            #expect(try report.decode("approved_cents", as: Int64.self) == 1200)  // OutcomeLookupTests.mitEvaluate
            #expect(try report.decode("cancelled_cents", as: Int64.self) == 1200)
            #expect(try report.decode("chargeback_cents", as: Int64.self) == 0)
            #expect(try report.decode("net_cents", as: Int64.self) == 0)
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

    @Test func aSandboxSignedWebhookNeverSettlesAProductionEvaluate() async throws {
        try await WorkerHarness.with { h in
            try await Self.enrolWithTwoWebhookKeys(h)
            let logs = LogRecorder()
            let server = try await RunningIntegrationServer.start(h, logger: logs.logger)
            defer { Task { await server.stop() } }
            let id = try await Self.awaitingEvaluate(h, order: "p-1", orderSessionKey: "fc-prod-1", environment: "production")
            let path = "/webhooks/flexcharge?merchant=m1"
            // Signed with the sandbox key, honest IsTestMode=true: a sandbox order of that id; ours is production.
            let sandboxBody = Self.body(event: "order.completed", orderID: "fc-prod-1", external: "p-1", isTestMode: true)
            #expect(try await server.post(path, headers: Self.signed(sandboxBody, server: server, key: Self.sandboxKey), body: sandboxBody).status == 200)
            #expect(try await Self.state(h, id) == "awaiting_outcome SUBMITTED")
            // Signed with the sandbox key but claiming production: refused, recorded with the reason.
            let lying = Self.body(event: "order.completed", orderID: "fc-prod-1", external: "p-1", isTestMode: false)
            let refused = try await server.post(path, headers: Self.signed(lying, server: server, key: Self.sandboxKey), body: lying)
            #expect(refused.status == 403)
            #expect(try await Self.state(h, id) == "awaiting_outcome SUBMITTED")

            // The production delivery of the same OrderId, Event and TimeStamp is not taken for a
            // redelivery of the sandbox one: it settles the event.
            let production = Self.body(event: "order.completed", orderID: "fc-prod-1", external: "p-1", isTestMode: false)
            #expect(try await server.post(path, headers: Self.signed(production, server: server, key: Self.productionKey), body: production).status == 200)
            #expect(try await Self.state(h, id) == "succeeded APPROVED")

            let rows = try await h.session.query(
                "SELECT environment, event_id, decision, refused_reason FROM flexcharge.outcome_events ORDER BY id").rows
            #expect(rows.count == 3)
            #expect(try rows.map { try $0.decode("environment", as: String?.self) } == ["sandbox", "sandbox", "production"])
            #expect(try rows.map { try $0.decode("event_id", as: Int64?.self) } == [nil, nil, id])
            #expect(try rows.map { try $0.decode("decision", as: String?.self) } == [nil, nil, "APPROVED"])
            #expect(try rows[0].decode("refused_reason", as: String?.self) == nil)
            #expect(try rows[1].decode("refused_reason", as: String?.self) == "signed with the sandbox key but IsTestMode=false (production)")
            #expect(logs.all.contains { $0.contains("environment mismatch") && $0.contains("IsTestMode=false") })
            #expect(!logs.all.contains { $0.contains(Self.sandboxKey) || $0.contains(Self.productionKey) })
        }
    }

    @Test func anIsTestModeThatDisagreesWithTheKeyIsRefusedAndSettlesNothing() async throws {
        try await WorkerHarness.with { h in
            try await Self.enrolWithTwoWebhookKeys(h)
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let sandboxEvent = try await Self.awaitingEvaluate(h, order: "s-1", orderSessionKey: "fc-sand-1", environment: "sandbox")
            let productionEvent = try await Self.awaitingEvaluate(h, order: "p-1", orderSessionKey: "fc-prod-1", environment: "production")
            let path = "/webhooks/flexcharge?merchant=m1"
            let cases: [(String, [UInt8], String, String)] = [
                ("production key, IsTestMode=true", Self.body(event: "order.completed", orderID: "fc-sand-1", isTestMode: true),
                 Self.productionKey, "signed with the production key but IsTestMode=true (sandbox)"),
                ("production key, IsTestMode=true, its own order", Self.body(event: "order.completed", orderID: "fc-prod-1", isTestMode: true),
                 Self.productionKey, "signed with the production key but IsTestMode=true (sandbox)"),
                ("no IsTestMode", Self.body(event: "order.completed", orderID: "fc-prod-1", isTestMode: nil),
                 Self.productionKey, "IsTestMode missing; signed with the production key"),
                ("sandbox key, IsTestMode=false", Self.body(event: "order.cancelled", orderID: "fc-sand-1", isTestMode: false),
                 Self.sandboxKey, "signed with the sandbox key but IsTestMode=false (production)"),
            ]
            for (name, body, key, _) in cases {
                let reply = try await server.post(path, headers: Self.signed(body, server: server, key: key), body: body)
                #expect(reply.status == 403, "\(name)")
            }
            #expect(try await Self.state(h, sandboxEvent) == "awaiting_outcome SUBMITTED")
            #expect(try await Self.state(h, productionEvent) == "awaiting_outcome SUBMITTED")
            let reasons = try await h.session.query(
                "SELECT refused_reason, event_id, decision FROM flexcharge.outcome_events ORDER BY id").rows
            #expect(try reasons.map { try $0.decode("refused_reason", as: String?.self) } == cases.map(\.3))
            #expect(try reasons.allSatisfy { try $0.decode("event_id", as: Int64?.self) == nil && $0.decode("decision", as: String?.self) == nil })

            // The honest deliveries settle their own environment's events.
            let sandbox = Self.body(event: "order.completed", orderID: "fc-sand-1", isTestMode: true)
            #expect(try await server.post(path, headers: Self.signed(sandbox, server: server, key: Self.sandboxKey), body: sandbox).status == 200)
            let production = Self.body(event: "order.cancelled", orderID: "fc-prod-1", isTestMode: false)
            #expect(try await server.post(path, headers: Self.signed(production, server: server, key: Self.productionKey), body: production).status == 200)
            #expect(try await Self.state(h, sandboxEvent) == "succeeded APPROVED")
            #expect(try await Self.state(h, productionEvent) == "succeeded CANCELLED")
        }
    }

    @Test func theExternalOrderIdFallbackOnlyFindsEvaluatesWithoutAnOrderSessionKeyInItsEnvironment() async throws {
        try await WorkerHarness.with { h in
            try await Self.enrolWithTwoWebhookKeys(h)
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            let path = "/webhooks/flexcharge?merchant=m1"
            // Our evaluate of order w-1 is FlexCharge order fc-real; a webhook about another FlexCharge
            // order that echoes the same ExternalOrderId is not about it.
            let keyed = try await Self.awaitingEvaluate(h, order: "w-1", orderSessionKey: "fc-real", environment: "sandbox")
            let other = Self.body(event: "order.completed", orderID: "fc-other", external: "w-1", isTestMode: true)
            #expect(try await server.post(path, headers: Self.signed(other, server: server, key: Self.sandboxKey), body: other).status == 200)
            #expect(try await Self.state(h, keyed) == "awaiting_outcome SUBMITTED")
            // A production evaluate that never got its key is not found by a sandbox delivery...
            let unkeyedProduction = try await Self.awaitingEvaluate(h, order: "w-2", orderSessionKey: nil, environment: "production")
            let sandboxForW2 = Self.body(event: "order.completed", orderID: "fc-x", external: "w-2", isTestMode: true)
            #expect(try await server.post(path, headers: Self.signed(sandboxForW2, server: server, key: Self.sandboxKey), body: sandboxForW2).status == 200)
            #expect(try await Self.state(h, unkeyedProduction) == "awaiting_outcome SUBMITTED")
            // ...but by its own environment's: the fallback's one use.
            let productionForW2 = Self.body(event: "order.expired", orderID: "fc-x", external: "w-2", isTestMode: false)
            #expect(try await server.post(path, headers: Self.signed(productionForW2, server: server, key: Self.productionKey),
                                          body: productionForW2).status == 200)
            #expect(try await Self.state(h, unkeyedProduction) == "succeeded EXPIRED")
            let matched = try await h.session.query("SELECT fc_order_id, event_id FROM flexcharge.outcome_events ORDER BY id").rows
            #expect(try matched.map { try $0.decode("event_id", as: Int64?.self) } == [nil, nil, unkeyedProduction])
            // The keyed evaluate still settles by its own FlexCharge order id.
            let real = Self.body(event: "order.completed", orderID: "fc-real", external: "w-1", isTestMode: true)
            #expect(try await server.post(path, headers: Self.signed(real, server: server, key: Self.sandboxKey), body: real).status == 200)
            #expect(try await Self.state(h, keyed) == "succeeded APPROVED")
        }
    }
}
