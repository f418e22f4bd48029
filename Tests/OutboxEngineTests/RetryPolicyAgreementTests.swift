import FlexChargeSandbox
import Foundation
import LibPQ
import Testing
@testable import OutboxEngine

/// Every place that applies the retry rules answers as ``RetryPolicy`` does: the lease rescue in SQL
/// (`flexcharge.rescue_expired_leases`, which states the limits as `attempts >= p_max_attempts`, or
/// `p_lookup_limit` for the kinds looked up after ambiguity)
/// and the operator's retry (which reads the window from the policy it is given).
@Suite struct RetryPolicyAgreementTests {
    @Test func theLeaseRescueDeclaresDeadExactlyWhenThePolicySaysExhausted() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let policy = RetryPolicy(maxAttempts: 3)
            var ids: [Int64] = []
            for n in 1...5 {
                ids.append(try await h.insert("transmit", order: "rescue-\(n)",
                                              payload: SamplePayloads.transmit(orderID: "rescue-\(n)", amountCents: 900, declined: false)))
            }
            let store = OutboxStore()
            let claimed = try await store.claim(on: h.session, worker: "w-gone", total: 5, laneCaps: [5, 5, 5, 5], lease: .seconds(30))
            #expect(Set(claimed.map(\.id)) == Set(ids))
            // The worker died during attempt n of event n: its leases expire.
            for (index, id) in ids.enumerated() {
                try await h.session.execute(
                    "UPDATE flexcharge.outbox SET attempts = $2, lease_expires_at = now() - interval '1 second' WHERE id = $1",
                    [id, index + 1])
            }
            #expect(try await store.rescueExpiredLeases(policy: policy, on: h.session) == 5)
            for (index, id) in ids.enumerated() {
                let attempts = index + 1
                let state: String = try await h.event(id).decode("state")
                #expect(state == (policy.isExhausted(afterAttempt: attempts) ? "dead" : "pending"), "after attempt \(attempts)")
            }
            // Both sides of the limit were exercised.
            #expect(ids.indices.contains { policy.isExhausted(afterAttempt: $0 + 1) })
            #expect(ids.indices.contains { !policy.isExhausted(afterAttempt: $0 + 1) })
        }
    }

    /// A kind looked up after ambiguity (here refunds) whose lease expired may have reached FlexCharge: it
    /// goes to a lookup while ``RetryPolicy/mayLookUp(afterAttempt:)`` says so, past the attempt limit too.
    @Test func theLeaseRescueLooksUpExactlyWhileThePolicyAllowsALookup() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            var policy = RetryPolicy(maxAttempts: 2)
            policy.lookupsPastTheLimit = 2
            let store = OutboxStore()
            var ids: [Int64] = []
            for n in 1...5 {
                let order = "refund-\(n)"
                ids.append(try await h.insert("refund", order: order, payload: #"{"amountCents": 100}"#))
            }
            for (index, id) in ids.enumerated() {
                try await h.session.execute(
                    """
                    UPDATE flexcharge.outbox SET state = 'running', lease_owner = 'w-gone', attempts = $2,
                           lease_expires_at = now() - interval '1 second'
                     WHERE id = $1
                    """, [id, index + 1])
            }
            #expect(try await store.rescueExpiredLeases(policy: policy, on: h.session) == 5)
            for (index, id) in ids.enumerated() {
                let attempts = index + 1, row = try await h.event(id)
                let state: String = try row.decode("state")
                #expect(state == (policy.mayLookUp(afterAttempt: attempts) ? "pending" : "dead"), "after attempt \(attempts)")
                if state == "pending" { #expect(try row.decode("next_action", as: String.self) == "lookup") }
            }
            // Past the attempt limit, before and at the lookup limit.
            #expect(ids.indices.contains { policy.isPastTheLimit($0 + 1) && policy.mayLookUp(afterAttempt: $0 + 1) })
            #expect(ids.indices.contains { !policy.mayLookUp(afterAttempt: $0 + 1) })
        }
    }

    @Test func theOperatorsRetryAsksThePolicysIdempotencyWindow() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            /// A dead evaluate first sent `firstSent` (an SQL interval from now) ago; the operator's note.
            func retried(firstSent offset: String, window: Duration) async throws -> String {
                let order = "window-\(UUID().uuidString.prefix(8))"
                let id = try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order))
                try await h.session.execute(
                    """
                    UPDATE flexcharge.outbox SET state = 'dead', attempts = 12, completed_at = now(),
                           first_claimed_at = now() + $2::interval
                     WHERE id = $1
                    """, [id, offset])
                let actions = OperatorActions(session: h.session, actor: "ops", retryPolicy: RetryPolicy(idempotencyWindow: window))
                #expect(try await actions.retry(id) == "lookup")  // a sent evaluate is always looked up first
                let note = try await h.session.query(
                    "SELECT error FROM flexcharge.attempts WHERE event_id = $1 AND action = 'operator_retry'", [id]).first
                return try #require(note).decode("error", as: String.self)
            }
            let past = "past FlexCharge's idempotency window"
            #expect(try await retried(firstSent: "-3 hours", window: .seconds(2 * 3600)).contains(past))
            #expect(try await retried(firstSent: "-3 hours", window: .seconds(2 * 3600)).contains("more than 2 h ago"))
            #expect(!(try await retried(firstSent: "-3 hours", window: .seconds(24 * 3600)).contains(past)))
            #expect(try await retried(firstSent: "-25 hours", window: .seconds(24 * 3600)).contains(past))
            // The worker's rule, not a copy: a first send far in the future counts as passed.
            #expect(try await retried(firstSent: "1 hour", window: .seconds(24 * 3600)).contains(past))
            #expect(!(try await retried(firstSent: "1 minute", window: .seconds(24 * 3600)).contains(past)))
        }
    }
}
