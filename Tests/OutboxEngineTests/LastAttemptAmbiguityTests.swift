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

            // Approved through one lookup, sent once, never again, and counted by the report as FlexCharge counts it.
            try await Self.expectApprovedByOneLookup(h, id, order: "L-1", actions: ["send", "lookup"], sends: 1)
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

    /// A worker killed (SIGKILL, out of memory, machine lost) during an evaluate's last allowed send: the
    /// send reached FlexCharge, which approved and charged. The lease rescue sends the event to a lookup
    /// (migrations/0036), not to dead, and the report counts the order as FlexCharge does.
    @Test func anEvaluateWhoseWorkerDiedDuringItsLastSendIsLookedUpNotLeftDead() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("evaluate", order: "L-3", payload: h.approvedCITEvaluate(order: "L-3"))
            // The dead worker's claim: attempt 1 of 1, its lease gone.
            let claimed = try await h.session.query(
                "SELECT id FROM flexcharge.claim('killed-worker', 10, ARRAY[10,10,10,10], interval '1 millisecond')")
            #expect(claimed.rows.count == 1)
            // What its send did at FlexCharge before it died.
            h.sandbox.sandbox.plantOrder(SandboxOrderPlant(
                mid: WorkerHarness.sandboxMerchant.mid, merchantOrderId: "L-3", amountCents: 1500, status: 7,
                decision: "APPROVED", charged: true))
            try await h.runWorker(h.configuration(maxAttempts: 1)) { try await h.waitUntilSettled() }

            try await Self.expectApprovedByOneLookup(h, id, order: "L-3", actions: ["lease_expired", "lookup"], sends: 0)
        }
    }

    /// The same death where the send never reached FlexCharge: the lookup finds no order, and past the
    /// attempt limit nothing is sent again: the event is dead, FlexCharge was never asked to evaluate it.
    @Test func aLookupPastTheLimitThatFindsNoOrderEndsDeadWithoutSending() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("evaluate", order: "L-4", payload: h.approvedCITEvaluate(order: "L-4"))
            _ = try await h.session.query(
                "SELECT id FROM flexcharge.claim('killed-worker', 10, ARRAY[10,10,10,10], interval '1 millisecond')")
            try await h.runWorker(h.configuration(maxAttempts: 1)) { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "dead")
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions == ["lease_expired", "lookup"], "\(actions)")
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" }.isEmpty)
        }
    }

    /// The evaluate `id` of `order` ended APPROVED with these ledger `actions`, FlexCharge was sent it `sends` times
    /// in all, and m1's daily report counts one evaluate, approved, as FlexCharge's ledger does.
    private static func expectApprovedByOneLookup(
        _ h: WorkerHarness, _ id: Int64, order: String, actions expected: [String], sends: Int
    ) async throws {
        let row = try await h.event(id)
        let lastError = try row.decode("last_error", as: String?.self) ?? ""
        #expect(try row.decode("state", as: String.self) == "succeeded", "\(lastError)")
        #expect(try row.decode("decision", as: String?.self) == "APPROVED")
        let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
        #expect(actions == expected, "\(actions)")
        let sent = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == order }
        #expect(sent.count == sends, "never sent again")
        let report = try #require(try await h.session.query(
            "SELECT sum(evaluated) AS evaluated, sum(approved) AS approved FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first)
        #expect(try report.decode("evaluated", as: Int.self) == 1)
        #expect(try report.decode("approved", as: Int.self) == 1)
    }
}
