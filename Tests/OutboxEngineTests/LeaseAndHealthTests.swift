import AsyncHTTPClient
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import NIOCore
import NIOHTTP1
@testable import OutboxEngine
import Testing
import TestSupport

@Suite struct LeaseAndHealthTests {
    @Test func aCallLongerThanTheLeaseKeepsItsLeaseByRenewal() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge takes 5 s; the lease is 2 s: without renewal the rescuer would take the row back.
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .latency, latencyMilliseconds: 5000, count: 1)])
            let id = try await h.insert("transmit", order: "slow-1", payload: SamplePayloads.transmit(orderID: "slow-1", amountCents: 900, declined: false))
            try await h.runWorker(h.configuration(lease: .seconds(2))) { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("attempts", as: Int.self) == 1)
            #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["send"])
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /transmit" }.count == 1)
        }
    }

    @Test func theWorkerServesHealthReadinessAndMetrics() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let port = try freeTCPPort()
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = h.db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            let worker = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                "worker", "--sandbox-url", h.sandbox.environment.baseURL, "--http-port", String(port), "--http-host", "127.0.0.1",
                "--poll-interval-ms", "100",
            ], environment: environment)
            try await h.insert("transmit", order: "m-1", payload: SamplePayloads.transmit(orderID: "m-1", amountCents: 900, declined: false))
            try await h.waitUntilSettled()

            func get(_ path: String) async throws -> (Int, String) {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(5))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), String(buffer: body))
            }
            #expect(try await get("/healthz").0 == 200)
            #expect(try await get("/readyz").0 == 200)
            let (status, metrics) = try await get("/metrics")
            #expect(status == 200)
            // Labels in any order; the environment is one of them (issue 17).
            #expect(metrics.split(separator: "\n").contains { line in
                line.hasPrefix("flexcharge_outbox_completed_total{") && line.hasSuffix("} 1")
                    && [#"outcome="succeeded""#, #"class="none""#, #"environment="sandbox""#].allSatisfy { line.contains($0) }
            }, "\(metrics.prefix(2000))")
            #expect(metrics.contains("flexcharge_outbox_claimed_total"))
            #expect(!metrics.contains(WorkerHarness.sandboxMerchant.appSecret))
            worker.send(SIGTERM)
            #expect(await worker.wait().status == 0)
        }
    }
}
