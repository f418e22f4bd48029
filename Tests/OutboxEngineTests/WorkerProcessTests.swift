import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The real `flexcharge-outbox worker` process: killed with SIGKILL mid-call, stopped with SIGTERM.
@Suite struct WorkerProcessTests {
    func startWorker(_ h: WorkerHarness, extra: [String] = []) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = h.db.url
        environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
        return try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
            "worker", "--sandbox-url", h.sandbox.environment.baseURL, "--http-port", "0", "--lease-seconds", "2",
            "--poll-interval-ms", "100", "--backoff-base-ms", "20", "--backoff-cap-seconds", "0.2",
            "--request-timeout-seconds", "10", "--concurrency", "16",
        ] + extra, environment: environment)
    }

    @Test func aWorkerKilledAfterFlexChargeReceivedAnEvaluateLeavesOneChargeAndOneKey() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge takes 1.5 s to answer this evaluate; the worker dies while it waits.
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .latency, latencyMilliseconds: 1500, count: 1)])
            let id = try await h.insert("evaluate", order: "kill-1", payload: h.approvedCITEvaluate(order: "kill-1"))
            let first = try startWorker(h)
            try await h.waitUntil("SELECT state = 'running' FROM flexcharge.outbox WHERE id = $1", [id])
            try await Task.sleep(for: .milliseconds(300))
            first.send(SIGKILL)
            #expect(await first.wait().status == 128 + SIGKILL)
            // FlexCharge finishes processing the request the dead worker sent.
            let processed = await eventually(within: .seconds(10)) {
                h.sandbox.sandbox.ledger().requests.contains { $0.route == "POST /evaluate" && $0.processed }
            }
            try #require(processed, "FlexCharge never finished the evaluate the killed worker sent")
            #expect(try (await h.event(id)).decode("state", as: String.self) == "running")  // nothing was written

            let second = try startWorker(h)
            try await h.waitUntil("SELECT state NOT IN ('pending', 'running') FROM flexcharge.outbox WHERE id = $1", [id])
            second.send(SIGTERM)
            #expect(await second.wait().status == 0)

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions.contains("lease_expired"))
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.chargeCount(merchantOrderId: "kill-1") == 1)
            let keys = Set(ledger.requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "kill-1" }.compactMap(\.idempotencyKey))
            #expect(keys == [try row.decode("idempotency_key", as: String.self)])
            #expect(try row.decode("order_session_key", as: String?.self) == ledger.charges.first?.orderSessionKey)
        }
    }

    @Test func sigtermDrainsWithoutLosingOrDuplicatingAnything() async throws {
        try await WorkerHarness.with(configure: { $0.latency = SandboxLatency(fixedMilliseconds: 100) }) { h in
            try await h.enrol("m1")
            try await h.session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                SELECT 'transmit', 'm1', 'drain-' || g, 'cit', 'website', 'https://shop.example', $1::jsonb
                  FROM generate_series(1, 300) AS g
                """, [PGJSON(text: SamplePayloads.transmit(orderID: "drain", amountCents: 900, declined: false))])
            for n in 1...20 { try await h.insert("evaluate", order: "drain-eval-\(n)", payload: h.approvedCITEvaluate(order: "drain-eval-\(n)")) }

            let worker = try startWorker(h, extra: ["--grace-seconds", "10"])
            try await h.waitUntil("SELECT count(*) >= 40 FROM flexcharge.outbox WHERE state = 'succeeded'")
            worker.send(SIGTERM)
            let result = await worker.wait()
            #expect(result.status == 0, "\(result.stderr.suffix(2000))")
            // Nothing is left leased: every call in flight finished and was written, and the events
            // claimed ahead of the slots (--prefetch) were given back.
            #expect(result.stderr.contains("gave back events claimed but not started"))
            let running = try await h.session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'running'").first!
            #expect(try running.decode("n", as: Int.self) == 0)
            let pendingAfterDrain = try await h.session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'pending'").first!
            #expect(try pendingAfterDrain.decode("n", as: Int.self) > 0, "the drain test needs work left over")

            let again = try startWorker(h)
            try await h.waitUntilSettled(timeout: .seconds(60))
            again.send(SIGTERM)
            #expect(await again.wait().status == 0)

            let states = try await h.session.query("SELECT state, count(*) AS n FROM flexcharge.outbox GROUP BY state").rows
            #expect(states.count == 1)
            #expect(try states[0].decode("state", as: String.self) == "succeeded")
            // Each event was sent exactly once: one request per event at FlexCharge, one attempt each.
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.requests.filter { $0.route == "POST /transmit" }.count == 300)
            let evaluateKeys = ledger.requests.filter { $0.route == "POST /evaluate" }.compactMap(\.idempotencyKey)
            #expect(evaluateKeys.count == 20 && Set(evaluateKeys).count == 20)
            #expect(ledger.charges.count == 20)
            let attempts = try await h.session.query("SELECT count(*) AS n FROM flexcharge.attempts").first!
            #expect(try attempts.decode("n", as: Int.self) == 320)
            // A claim given back is not counted: every event used exactly one attempt.
            let counted = try await h.session.query("SELECT min(attempts) AS lo, max(attempts) AS hi FROM flexcharge.outbox").first!
            #expect(try counted.decode("lo", as: Int.self) == 1 && counted.decode("hi", as: Int.self) == 1)
        }
    }
}
