import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Cancel, refund and external-cancel events, ordered after their order's evaluate, against the sandbox.
@Suite struct FollowUpFlowTests {
    @Test func aRefundAboveTheRefundableAmountEndsFailedWithFlexChargeCode2001() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "r-1", payload: h.approvedCITEvaluate(order: "r-1", amount: 1500))
            let partial = try await h.insert("refund", order: "r-1", payload: #"{"amountCents": 505, "refundMessage": "customer request"}"#)
            let tooMuch = try await h.insert("refund", order: "r-1", payload: #"{"amountCents": 1000}"#)
            try await h.runWorker { try await h.waitUntilSettled() }
            #expect(try await h.event(evaluate).decode("decision", as: String?.self) == "APPROVED")
            let ok = try await h.event(partial)
            #expect(try ok.decode("state", as: String.self) == "succeeded")
            let failed = try await h.event(tooMuch)
            #expect(try failed.decode("state", as: String.self) == "failed")
            #expect(try failed.decode("last_error_class", as: String?.self) == "permanent")
            let error = try failed.decode("last_error", as: String?.self) ?? ""
            #expect(error.contains("2001"))
            #expect(error.contains("10.00"))
            // Exactly 5.05 was refunded (cents converted to decimal dollars exactly), once.
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.refunds.count == 1)
            #expect(ledger.refunds.first?.amountCents == 505)
            let report = try await h.session.query("SELECT failed FROM flexcharge.daily_report WHERE merchant_id = 'm1'").first!
            #expect(try report.decode("failed", as: Int64.self) == 1)
        }
    }

    @Test func aCancelInAStateThatDoesNotAllowItEndsFailedWithTheReason() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "c-1", payload: h.approvedCITEvaluate(order: "c-1"))
            let cancel = try await h.insert("cancel", order: "c-1", payload: "{}")
            try await h.runWorker { try await h.waitUntilSettled() }
            let row = try await h.event(cancel)
            #expect(try row.decode("state", as: String.self) == "failed")
            #expect(try row.decode("last_http_status", as: Int?.self) == 400)
            #expect((try row.decode("last_error", as: String?.self) ?? "").contains("cannot be cancelled in status COMPLETED"))
            #expect(try await h.attempts(cancel).count == 1)  // a permanent refusal is not retried
        }
    }

    @Test func aCancelledManagedMITEndsCancelledAndAnExternalCancelWorksWithoutAFlexChargeID() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let mit = try await h.insert("evaluate", order: "sub-1", channel: "mit", payload: OutcomeLookupTests.mitEvaluate("sub-1"))
            let cancel = try await h.insert("cancel", order: "sub-1", channel: "mit", payload: "{}")
            let other = try await h.insert("evaluate", order: "sub-2", channel: "mit", payload: OutcomeLookupTests.mitEvaluate("sub-2"))
            try await h.runWorker(OutcomeLookupTests.fastPolling(h)) {
                try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [other])
                // The gateway lost the evaluate's answer: it cancels by its own order id.
                let external = try await h.insert("external_cancel", order: "sub-2", channel: "mit", payload: "{}")
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [external])
                // Both orders end CANCELLED at FlexCharge; the lookup settles both evaluates.
                try await h.waitUntil(
                    "SELECT count(*) = 2 FROM flexcharge.outbox WHERE id = ANY($1::bigint[]) AND state = 'succeeded' AND decision = 'CANCELLED'",
                    [[mit, other]])
            }
            #expect(try await h.event(cancel).decode("state", as: String.self) == "succeeded")
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.chargeCount(merchantOrderId: "sub-1") == 0)
            #expect(ledger.chargeCount(merchantOrderId: "sub-2") == 0)
            #expect(ledger.requests.contains { $0.route == "POST /orders/{id}/external-cancel" && $0.httpStatus == 200 })
        }
    }
}
