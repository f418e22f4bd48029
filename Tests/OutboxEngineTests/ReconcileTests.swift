import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
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
            #expect(found.stdout.contains("\(key)") && found.stdout.contains("decision: ours APPROVED, FlexCharge CANCELLED (CANCELLED)"), "\(found.stdout)")
            #expect(found.stdout.contains(ghost) && found.stdout.contains("no evaluate of ours"), "\(found.stdout)")
            #expect(!found.stdout.contains("r-2"))
            #expect(!found.stdout.contains(WorkerHarness.sandboxMerchant.appSecret) && !found.stderr.contains(WorkerHarness.sandboxMerchant.appSecret))

            let bad = try await ChildProcess(PackagePaths.executable("flexcharge-outbox"), ["reconcile", "--merchant", "nobody", "--day", today],
                                             environment: environment).wait()
            #expect(bad.status == 2)
            #expect(bad.stderr == "flexcharge-outbox: unknown merchant nobody\n")
        }
    }

    /// For every FlexCharge order status, orders recorded correctly (no difference) beside one recorded
    /// wrongly (a difference): reconcile lists exactly the wrong ones, the order whose amount differs,
    /// the refund FlexCharge never applied and the order we never evaluated, and nothing else.
    @Test func reconcileFindsExactlyThePlantedDifferencesForEveryStatus() async throws {
        // (FlexCharge status code, our decision, a difference?)
        let plants: [(status: Int, ours: String, differs: Bool)] = [
            (0, "SUBMITTED", false), (0, "APPROVED", true),
            (1, "CHALLENGE", false), (1, "DECLINED", true),
            (2, "DECLINED", false), (2, "CANCELLED", false), (2, "EXPIRED", false), (2, "APPROVED", true),
            (3, "SUBMITTED", false), (3, "CANCELLED", true),
            (4, "SUBMITTED", false), (4, "CHALLENGE", false), (4, "EXPIRED", true),
            (5, "CAPTUREREQUIRED", false), (5, "SUBMITTED", true),
            (6, "APPROVED", false), (6, "DECLINED", true),
            (7, "APPROVED", false), (7, "CHALLENGE", true),
        ]
        let names = ["DRAFT", "ONHOLD", "CANCELLED", "PROBLEM", "PROCESSING", "CAPTUREREQUIRED", "RETURNED", "COMPLETED"]
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let orders = plants.indices.map { "p-\($0)" } + ["cancelled-after-approval", "amount-differs", "refunded", "refund-unknown"]
            for order in orders { try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order)) }
            // A refund FlexCharge applied and we recorded: no difference.
            try await h.insert("refund", order: "refunded", payload: #"{"amountCents": 500}"#)
            try await h.runWorker { try await h.waitUntilSettled() }
            try await h.session.execute("DELETE FROM flexcharge.merchant_credentials WHERE environment = 'production'")
            func key(_ order: String) async throws -> String {
                try await h.session.query("SELECT order_session_key FROM flexcharge.outbox WHERE order_id = $1", [order])
                    .first!.decode(0, as: String.self)
            }
            var expected: [String: String] = [:]  // order session key -> the problem's beginning
            for (index, plant) in plants.enumerated() {
                let key = try await key("p-\(index)")
                h.sandbox.sandbox.plantOrder(SandboxOrderPlant(id: key, status: plant.status))
                try await h.session.execute("UPDATE flexcharge.outbox SET decision = $2 WHERE order_session_key = $1", [key, plant.ours])
                if plant.differs { expected[key] = "decision: ours \(plant.ours), FlexCharge \(names[plant.status]) (" }
            }
            // FlexCharge cancelled an approved order and told us (order.cancelled): the reports reversed it; no difference.
            let cancelled = try await key("cancelled-after-approval")
            h.sandbox.sandbox.plantOrder(SandboxOrderPlant(id: cancelled, status: 2))
            try await h.session.execute(
                """
                INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id, fc_timestamp)
                SELECT 'webhook', merchant_id, environment, id, 'order.cancelled', order_session_key, '2026-12-01T10:00:00Z'
                  FROM flexcharge.outbox WHERE order_session_key = $1
                """, [cancelled])
            let amount = try await key("amount-differs")
            h.sandbox.sandbox.plantOrder(SandboxOrderPlant(id: amount, amountCents: 1501))
            expected[amount] = "amount: ours 1500 cents, FlexCharge 1501 cents"
            // A refund we recorded as succeeded that FlexCharge never applied.
            let unknownRefund = try await key("refund-unknown")
            let refund = try await h.insert("refund", order: "refund-unknown", payload: #"{"amountCents": 300}"#)
            try await h.session.execute(
                "UPDATE flexcharge.outbox SET state = 'succeeded', environment = 'sandbox', order_session_key = $2 WHERE id = $1",
                [refund, unknownRefund])
            expected[unknownRefund] = "refunded: ours 300 cents, FlexCharge 0 cents"
            let ghost = h.sandbox.sandbox.plantOrder(SandboxOrderPlant(
                mid: WorkerHarness.sandboxMerchant.mid, merchantOrderId: "ghost-1", amountCents: 4200, status: 7))
            expected[ghost] = "at FlexCharge (COMPLETED), no evaluate of ours"

            let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = h.db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            let run = try await ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                "reconcile", "--merchant", "m1", "--day", today, "--json", "--sandbox-url", h.sandbox.environment.baseURL,
                "--production-url", h.sandbox.environment.baseURL,
            ], environment: environment).wait()
            #expect(run.status == 3, "\(run.stderr)")
            let found = try JSONDecoder().decode([Reconciler.Difference].self, from: Data(run.stdout.utf8))
            #expect(found.count == expected.count, "\(found.map(\.problem))")
            #expect(Set(found.map(\.orderSessionKey)) == Set(expected.keys))
            for difference in found {
                let beginning = expected[difference.orderSessionKey] ?? "(not planted)"
                #expect(difference.problem.hasPrefix(beginning), "\(difference.orderSessionKey): \(difference.problem), planted \(beginning)")
                #expect(difference.environment == "sandbox")
            }
        }
    }
}
