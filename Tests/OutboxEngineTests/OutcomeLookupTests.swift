import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The lookup fallback: evaluates awaiting their outcome are resolved with `GET /orders/{id}`
/// when no webhook arrives (the test sandbox sends none: no webhook URL is configured).
@Suite struct OutcomeLookupTests {
    static func fastPolling(_ h: WorkerHarness, expiryGrace: Duration = .seconds(3600)) -> WorkerConfiguration {
        var configuration = h.configuration()
        configuration.outcomePolling = OutcomePolling(
            firstDelay: .milliseconds(200), base: .milliseconds(200), cap: .milliseconds(400), expiryGrace: expiryGrace,
            batchSize: 8, lease: .seconds(10), interval: .milliseconds(100))
        return configuration
    }

    static func mitEvaluate(_ order: String, expiry: Date = Date().addingTimeInterval(21 * 86_400)) -> String {
        SamplePayloads.evaluate(orderID: order, amountCents: 1200, payerEmail: "approve-\(order)@example.com", mit: true,
                                expiry: expiry)
    }

    @Test func aSubmittedMITWhoseWebhookIsLostIsResolvedByLookup() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let listener = h.db.session("listener")
            defer { Task { await listener.close() } }
            try await listener.listen("flexcharge_event_done")
            let id = try await h.insert("evaluate", order: "mit-1", channel: "mit", payload: Self.mitEvaluate("mit-1"))
            try await h.runWorker(Self.fastPolling(h)) {
                // SUBMITTED, then looked up at least twice while FlexCharge still works it: still pending.
                try await h.waitUntil("SELECT state = 'awaiting_outcome' AND outcome_polls >= 2 FROM flexcharge.outbox WHERE id = $1", [id])
                let pending = try await h.session.query(
                    "SELECT pending, approved FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
                #expect(try pending.decode("pending", as: Int64.self) == 1)
                #expect(try pending.decode("approved", as: Int64.self) == 0)
                let key: String = try await h.event(id).decode("order_session_key")
                #expect(h.sandbox.sandbox.completeOrder(id: key))
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [id])
            }
            let row = try await h.event(id)
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            let report = try await h.session.query(
                "SELECT pending, approved, approved_cents FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("pending", as: Int64.self) == 0)
            #expect(try report.decode("approved", as: Int64.self) == 1)
            #expect(try report.decode("approved_cents", as: Int64.self) == 1200)
            // The lookups are in the attempt ledger, the final one in outcome_events.
            let lookups = try await h.attempts(id).filter { try $0.decode("action", as: String.self) == "lookup" }
            #expect(lookups.count >= 3)
            #expect(try lookups.allSatisfy { try $0.decode("http_status", as: Int?.self) == 200 })
            let outcomes = try await h.session.query(
                "SELECT source, decision FROM flexcharge.order_outcomes WHERE merchant_id = 'm1' AND order_id = 'mit-1'").rows
            #expect(outcomes.count == 1)
            #expect(try outcomes.first?.decode("source", as: String.self) == "lookup")
            #expect(try outcomes.first?.decode("decision", as: String?.self) == "APPROVED")
            // The gateway was told: SUBMITTED first, then APPROVED.
            var payloads: [String] = []
            for _ in 0..<10 { payloads += try await listener.waitForNotifications(timeoutMilliseconds: 50).map(\.payload) }
            #expect(payloads.contains { $0.contains("\"id\" : \(id)") && $0.contains("\"decision\" : \"APPROVED\"") && $0.contains("\"state\" : \"succeeded\"") })
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "mit-1") == 1)
        }
    }

    /// A succeeded capture of a CAPTUREREQUIRED order counts as approved money at once (its cents),
    /// while the evaluate still awaits its outcome; the lookup that then finds the order COMPLETED
    /// makes the evaluate APPROVED, and the money still counts once.
    @Test func aCapturedOrderCountsAsApprovedMoneyBeforeAndAfterItsLookup() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "cap-1", payload: h.captureRequiredEvaluate(order: "cap-1", amount: 2500))
            let capture = try await h.insert("capture", order: "cap-1", payload: #"{"amountCents": 2500}"#)
            func report() async throws -> [Int64] {
                let row = try await h.session.query(
                    "SELECT approved, approved_cents, net_cents, pending FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
                return try ["approved", "approved_cents", "net_cents", "pending"].map { try row.decode($0, as: Int64.self) }
            }
            // Default polling (first lookup after 60 s): nothing looks the order up during this run.
            try await h.runWorker { try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [capture]) }
            #expect(try await Self.decisionAndState(h, evaluate) == "CAPTUREREQUIRED awaiting_outcome")
            #expect(try await report() == [1, 2500, 2500, 1])
            try await h.runWorker(Self.fastPolling(h)) {
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [evaluate])
            }
            #expect(try await Self.decisionAndState(h, evaluate) == "APPROVED succeeded")
            #expect(try await report() == [1, 2500, 2500, 0])
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "cap-1") == 1)
        }
    }

    static func decisionAndState(_ h: WorkerHarness, _ id: Int64) async throws -> String {
        let row = try await h.event(id)
        return "\(try row.decode("decision", as: String?.self) ?? "-") \(try row.decode("state", as: String.self))"
    }

    @Test func anOrderThatExpiresIsRecordedAsExpired() async throws {
        try await WorkerHarness.with(configure: { $0.managedMITOutcome = .expire }) { h in
            try await h.enrol("m1")
            let id = try await h.insert("evaluate", order: "mit-exp", channel: "mit",
                                        payload: Self.mitEvaluate("mit-exp", expiry: Date().addingTimeInterval(8)))
            try await h.runWorker(Self.fastPolling(h)) {
                // Generous: it once took longer than 40 s on a cold CI machine running every suite at once.
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [id], timeout: .seconds(90))
            }
            let row = try await h.event(id)
            #expect(try row.decode("decision", as: String?.self) == "EXPIRED")
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "mit-exp") == 0)
        }
    }

    @Test func anOrderStillPendingPastItsExpiryGoesDeadWithAReason() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // The expiry is far enough ahead that a loaded machine (every suite at once) answers the evaluate
            // and plants the order well before it passes.
            let id = try await h.insert("evaluate", order: "mit-stuck", channel: "mit",
                                        payload: Self.mitEvaluate("mit-stuck", expiry: Date().addingTimeInterval(25)))
            try await h.runWorker(Self.fastPolling(h, expiryGrace: .zero)) {
                try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [id])
                // FlexCharge keeps it in Processing (never settles): our side must not wait forever.
                let key: String = try await h.event(id).decode("order_session_key")
                h.sandbox.sandbox.plantOrder(SandboxOrderPlant(id: key, status: 4, decision: "PROCESSING"))
                try await h.waitUntil("SELECT state = 'dead' FROM flexcharge.outbox WHERE id = $1", [id], timeout: .seconds(60))
            }
            let row = try await h.event(id)
            let error = try row.decode("last_error", as: String?.self) ?? ""
            #expect(error.contains("expiryDateUtc"))
            #expect(error.contains("PROCESSING"))
            let report = try await h.session.query("SELECT pending, dead FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("pending", as: Int64.self) == 0)
            #expect(try report.decode("dead", as: Int64.self) == 1)
        }
    }

    @Test func aFailedLookupIsRetriedWithBackoffAndRecorded() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("evaluate", order: "mit-503", channel: "mit", payload: Self.mitEvaluate("mit-503"))
            try await h.runWorker(Self.fastPolling(h)) {
                try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [id])
                h.sandbox.sandbox.setFaults([FaultRule(route: "GET /orders/{id}", kind: .status, status: 503, count: 2)])
                let key: String = try await h.event(id).decode("order_session_key")
                #expect(h.sandbox.sandbox.completeOrder(id: key))
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [id])
            }
            #expect(try await h.event(id).decode("decision", as: String?.self) == "APPROVED")
            let failed = try await h.attempts(id).filter { try $0.decode("http_status", as: Int?.self) == 503 }
            #expect(failed.count == 2)
            #expect(try failed.allSatisfy { try $0.decode("action", as: String.self) == "lookup" && $0.decode("failure_class", as: String?.self) == "retryable" })
        }
    }
}
