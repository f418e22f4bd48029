import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// The sandbox's two refund modes: `strict` (every refund applied, what the worker's tests use) and
/// `per-order` (the contract's note that FlexCharge deduplicates refunds per order).
@Suite struct RefundDeduplicationTests {
    @Test func strictRefundsTwiceWhenAskedTwice() async throws {
        try await SandboxHarness.with { h in
            let id = try #require(try await h.client.evaluate(h.evaluateRequest(amount: 1500), credentials: h.credentials).body.orderId)
            for _ in 0..<2 {
                #expect(try await h.client.refund(orderId: id, amountCents: 400, credentials: h.credentials).body.status == "SUCCESS")
            }
            #expect(h.sandbox.ledger().refunds.map(\.amountCents) == [400, 400])
            #expect(try await h.client.order(id: id, credentials: h.credentials).body.refundedAmount == 800)
        }
    }

    @Test func perOrderReplaysTheSameAmountOnTheSameOrderAndAppliesOtherAmounts() async throws {
        try await SandboxHarness.with(configure: { $0.refundDeduplication = .perOrder }) { h in
            let id = try #require(try await h.client.evaluate(h.evaluateRequest(amount: 1500), credentials: h.credentials).body.orderId)
            let first = try await h.client.refund(orderId: id, amountCents: 400, credentials: h.credentials)
            let again = try await h.client.refund(orderId: id, amountCents: 400, credentials: h.credentials)
            #expect(first.body.status == "SUCCESS")
            #expect(again.body.transactionId == first.body.transactionId)  // the first answer, replayed
            #expect(try await h.client.refund(orderId: id, amountCents: 300, credentials: h.credentials).body.status == "SUCCESS")
            #expect(h.sandbox.ledger().refunds.map(\.amountCents) == [400, 300])
            #expect(try await h.client.order(id: id, credentials: h.credentials).body.refundedAmount == 700)
        }
    }
}
