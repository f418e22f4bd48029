import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Every follow-up kind, when the send that may have reached FlexCharge was the last one allowed
/// (`--max-attempts 1`): it is looked up past the limit (RetryPolicy.lookupsPastTheLimit), recorded when
/// FlexCharge applied it, and otherwise left dead; past the limit it is never sent again. The
/// evaluate's own case is in LastAttemptAmbiguityTests.
@Suite struct FollowUpLastAttemptTests {
    /// One follow-up: the order it acts on, the route it is sent to, and what FlexCharge then holds.
    struct Case: Sendable, CustomTestStringConvertible {
        var kind: String
        var route: String
        var payload: String
        var channel = "cit"
        var testDescription: String { kind }
    }

    static let cases: [Case] = [
        Case(kind: "refund", route: "POST /orders/{id}/refund", payload: #"{"amountCents": 500}"#),
        Case(kind: "cancel", route: "POST /orders/{id}/cancel", payload: "{}"),
        Case(kind: "capture", route: "POST /capture", payload: #"{"amountCents": 2500}"#),
        Case(kind: "external_cancel", route: "POST /orders/{id}/external-cancel", payload: "{}", channel: "mit"),
    ]

    /// FlexCharge applies the follow-up and the connection drops before its answer: one lookup records it.
    @Test(arguments: cases) func aFollowUpFlexChargeAppliedOnTheLastAttemptIsRecordedByALookup(_ followUp: Case) async throws {
        let (state, actions, sent, applied) = try await run(followUp, fault: .resetAfterProcessing)
        #expect(state == "succeeded")
        #expect(actions == ["send", "lookup"], "\(actions)")
        #expect(sent == 1, "sent once")
        #expect(applied, "FlexCharge holds it")
    }

    /// The connection drops before FlexCharge acts: the lookup finds it not applied, and past the limit it is
    /// dead for an operator, not sent a second time.
    @Test(arguments: cases) func aFollowUpNotAppliedOnTheLastAttemptIsDeadNotSentAgain(_ followUp: Case) async throws {
        let (state, actions, sent, applied) = try await run(followUp, fault: .resetBeforeProcessing)
        #expect(state == "dead")
        #expect(actions == ["send", "lookup"], "\(actions)")
        #expect(sent == 1, "never sent past the limit")
        #expect(!applied)
    }

    /// Runs the order's evaluate, then the follow-up with `fault` on its first call and one attempt allowed.
    /// Answers the follow-up's state and ledger actions, how many times FlexCharge was sent it, and whether
    /// FlexCharge holds it applied.
    private func run(_ followUp: Case, fault: FaultRule.Kind) async throws -> (String, [String], Int, Bool) {
        var result: (String, [String], Int, Bool)?
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let order = "last-\(followUp.kind)"
            var configuration = h.quickSettle()
            configuration.retryPolicy.maxAttempts = 1
            if followUp.channel == "mit" {
                let mit = try await h.insert("evaluate", order: order, channel: "mit", payload: OutcomeLookupTests.mitEvaluate(order))
                try await h.runWorker(configuration) {
                    try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [mit])
                }
            } else {
                let payload = followUp.kind == "refund" ? h.approvedCITEvaluate(order: order, amount: 2500)
                    : h.captureRequiredEvaluate(order: order, amount: 2500)
                try await h.insert("evaluate", order: order, payload: payload)
                try await h.runWorker(configuration) { try await h.waitUntilSettled() }
            }
            let id = try await h.insert(followUp.kind, order: order, channel: followUp.channel, payload: followUp.payload)
            h.sandbox.sandbox.setFaults([FaultRule(route: followUp.route, kind: fault, count: 1)])
            try await h.runWorker(configuration) {
                try await h.waitUntil("SELECT state NOT IN ('pending', 'running') FROM flexcharge.outbox WHERE id = $1", [id])
            }
            let state: String = try await h.event(id).decode("state")
            let ledger = h.sandbox.sandbox.ledger()
            let sent = ledger.requests.filter { $0.route == followUp.route }.count
            let applied: Bool = switch followUp.kind {
            case "refund": ledger.refunds.map(\.amountCents) == [500]
            case "capture": ledger.chargeCount(merchantOrderId: order) == 1
            default: ledger.requests.contains { $0.route == followUp.route && $0.processed }  // the sandbox cancelled the order
            }
            result = (state, try await h.actions(of: id), sent, applied)
        }
        return try #require(result)
    }
}
