import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// An event whose last allowed send went unanswered is looked up, not left dead: FlexCharge may have acted on
/// it (the full chaos run found an evaluate FlexCharge approved and charged, dead on our side, so the report
/// missed its 5 000 cents). Past the attempt limit it is only looked up (RetryPolicy.lookupsPastTheLimit),
/// never sent again.
@Suite struct LastAttemptAmbiguityTests {
    @Test func anEvaluateWhoseLastSendWentUnansweredIsLookedUpAndRecorded() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge evaluates (and approves) the order, then the connection drops before the answer.
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .resetAfterProcessing, count: 1)])
            let id = try await h.insert("evaluate", order: "L-1", payload: h.approvedCITEvaluate(order: "L-1"))
            try await h.runWorker(h.configuration(maxAttempts: 1)) { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            let lastError = try row.decode("last_error", as: String?.self) ?? ""
            #expect(try row.decode("state", as: String.self) == "succeeded", "\(lastError)")
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions == ["send", "lookup"], "\(actions)")
            let sent = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "L-1" }
            #expect(sent.count == 1, "sent once, never again")
            // The report counts it as FlexCharge does: evaluated and approved.
            let report = try #require(try await h.session.query(
                "SELECT sum(evaluated) AS evaluated, sum(approved) AS approved FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first)
            #expect(try report.decode("evaluated", as: Int.self) == 1)
            #expect(try report.decode("approved", as: Int.self) == 1)
        }
    }

    @Test func lookupsPastTheLimitAreBoundedAndNeverSendAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // The send goes unanswered, and every lookup fails: the event ends dead after the lookups allowed
            // past the limit, and FlexCharge is sent the evaluate once.
            h.sandbox.sandbox.setFaults([
                FaultRule(route: "POST /evaluate", kind: .resetAfterProcessing, count: 1),
                FaultRule(route: "GET /orders", kind: .status, status: 503, probability: 1),
                FaultRule(route: "GET /orders/{id}", kind: .status, status: 503, probability: 1),
            ])
            var configuration = h.configuration(maxAttempts: 2)
            configuration.breaker = BreakerPolicy(enabled: false)
            let id = try await h.insert("evaluate", order: "L-2", payload: h.approvedCITEvaluate(order: "L-2"))
            try await h.runWorker(configuration) { try await h.waitUntilSettled(timeout: .seconds(60)) }

            let row = try await h.event(id)
            let limit = configuration.retryPolicy.maxAttempts + configuration.retryPolicy.lookupsPastTheLimit
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try row.decode("attempts", as: Int.self) == limit)
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions.first == "send" && actions.dropFirst().allSatisfy { $0 == "lookup" } && actions.count == limit, "\(actions)")
            let sent = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "L-2" }
            #expect(sent.count == 1)
        }
    }
}
