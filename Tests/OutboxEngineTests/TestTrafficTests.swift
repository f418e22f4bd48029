import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Issue 16, "test traffic beside live traffic": an event with `is_test` goes to FlexCharge's
/// sandbox with the merchant's sandbox credentials whatever its switch (migrations/0014).
@Suite struct TestTrafficTests {
    @Test func aMerchantLiveOnCITSendsItsTestEventsToTheSandbox() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .production, citCallCenter: .off, mit: .off)
            let live = try await h.insert("evaluate", order: "live-1", payload: h.approvedCITEvaluate(order: "live-1"))
            func insertTest(_ order: String, origin: String) async throws -> Int64 {
                try await h.session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ('evaluate', 'm1', $1, 'cit', $2, 'https://shop.example', $3::jsonb, true) RETURNING id
                    """, [order, origin, PGJSON(text: h.approvedCITEvaluate(order: order))]).first!.decode("id")
            }
            let test = try await insertTest("test-1", origin: "website")
            let testOff = try await insertTest("test-2", origin: "call_center")  // its live channel is off
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try (await h.event(live)).decode("environment", as: String?.self) == "production")
            #expect(try (await h.event(test)).decode("environment", as: String?.self) == "sandbox")
            #expect(try (await h.event(testOff)).decode("environment", as: String?.self) == "sandbox")
            #expect(try ["succeeded", "awaiting_outcome"].contains((await h.event(test)).decode("state", as: String.self)))
            let sandboxOrders = Set(h.sandbox.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            let productionOrders = Set(h.production!.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            #expect(sandboxOrders == ["test-1", "test-2"])
            #expect(productionOrders == ["live-1"])
        }
    }
}
