import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Issue 16: a shopper's CIT evaluate never waits behind its order's transmit, a fire-and-forget
/// data feed (per-order rule of migrations/0014).
@Suite struct EvaluateNotDelayedTests {
    @Test func aCITEvaluateIsSentWhileItsOrdersTransmitKeepsFailing() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge's /transmit answers 503 for the whole test ("failing for minutes"); the
            // transmit retries on the worker's usual schedule (full jitter: the first retry is due at a
            // random time within 30 s, so it may come while this test runs).
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .status, status: 503, probability: 1)])
            var configuration = h.configuration()
            configuration.retryPolicy = RetryPolicy(backoff: Backoff(base: .seconds(30), cap: .seconds(300)), maxAttempts: 12)
            try await h.runWorker(configuration) {
                let transmit = try await h.insert("transmit", order: "A-1", payload: SamplePayloads.transmit(
                    orderID: "A-1", amountCents: 1500, declined: true))
                try await h.waitUntil(
                    "SELECT state = 'pending' AND attempts >= 1 AND last_http_status = 503 FROM flexcharge.outbox WHERE id = $1",
                    [transmit])

                let inserted = ContinuousClock.now
                let evaluate = try await h.insert("evaluate", order: "A-1", payload: h.approvedCITEvaluate(order: "A-1"))
                try await h.waitUntil(
                    "SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [evaluate],
                    timeout: .seconds(20))
                let waited = ContinuousClock.now - inserted

                // Picked up as an idle worker picks up any CIT evaluate (NOTIFY, else the 100 ms poll):
                // well within seconds, while the order's transmit is still failing and waiting to retry.
                #expect(waited < .seconds(10), "the evaluate waited \(waited)")
                // Not delivered: waiting to retry, or in a retry right now (a helper's run once saw it not
                // `pending` here).
                let row = try await h.event(transmit)
                let state = try row.decode("state", as: String.self)
                #expect(["pending", "running"].contains(state), "the transmit is \(state)")
                #expect(try row.decode("transaction_key", as: String?.self) == nil)
                let requests = h.sandbox.sandbox.ledger().requests.filter { $0.merchantOrderId == "A-1" }
                #expect(requests.contains { $0.route == "POST /evaluate" && $0.processed })
                #expect(requests.filter { $0.route == "POST /transmit" }.allSatisfy { !$0.processed })
            }
        }
    }
}
