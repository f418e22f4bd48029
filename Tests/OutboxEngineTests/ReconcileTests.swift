import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import OutboxEngine
import Testing
import TestSupport

@Suite struct ReconcileTests {
    @Test func reconcileFindsDifferencesPlantedAtFlexCharge() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            for order in ["r-1", "r-2"] { try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order)) }
            try await h.runWorker { try await h.waitUntilSettled() }
            // This merchant is live in the sandbox only (the harness enrols both environments against one simulator).
            try await h.session.execute("DELETE FROM flexcharge.merchant_credentials WHERE environment = 'production'")
            let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = h.db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            func reconcile() async throws -> ProcessResult {
                await try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                    "reconcile", "--merchant", "m1", "--day", today, "--sandbox-url", h.sandbox.environment.baseURL,
                    "--production-url", h.sandbox.environment.baseURL,
                ], environment: environment).wait()
            }
            let clean = try await reconcile()
            #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
            #expect(clean.stdout.contains("no differences"))

            // FlexCharge cancels one of our approved orders, and has an order we never evaluated.
            let key = try await h.session.query(
                "SELECT order_session_key FROM flexcharge.outbox WHERE order_id = 'r-1'").first!.decode(0, as: String.self)
            h.sandbox.sandbox.plantOrder(SandboxOrderPlant(id: key, status: 2, decision: "CANCELLED"))
            let ghost = h.sandbox.sandbox.plantOrder(SandboxOrderPlant(
                mid: WorkerHarness.sandboxMerchant.mid, merchantOrderId: "ghost-9", amountCents: 4200, status: 7))
            let found = try await reconcile()
            #expect(found.status == 3)
            #expect(found.stdout.contains("\(key)") && found.stdout.contains("decision: ours APPROVED, FlexCharge DECLINED"), "\(found.stdout)")
            #expect(found.stdout.contains(ghost) && found.stdout.contains("no evaluate of ours"), "\(found.stdout)")
            #expect(!found.stdout.contains("r-2"))
            #expect(!found.stdout.contains(WorkerHarness.sandboxMerchant.appSecret) && !found.stderr.contains(WorkerHarness.sandboxMerchant.appSecret))

            let bad = try await ChildProcess(PackagePaths.executable("flexcharge-outbox"), ["reconcile", "--merchant", "nobody", "--day", today],
                                             environment: environment).wait()
            #expect(bad.status == 2)
            #expect(bad.stderr == "flexcharge-outbox: unknown merchant nobody\n")
        }
    }
}
