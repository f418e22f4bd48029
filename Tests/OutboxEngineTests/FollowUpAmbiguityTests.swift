import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Refunds, cancels, external cancels and captures whose call may have reached FlexCharge are looked
/// up before anything is sent again, against the sandbox in its strict refund mode (it applies every
/// refund it is sent, so only the worker can prevent a double refund).
@Suite struct FollowUpAmbiguityTests {
    private static let refundRoute = "POST /orders/{id}/refund"

    @Test func aRefundWhoseConnectionDroppedAfterFlexChargeAppliedItIsLookedUpNotSentAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "r-1", payload: h.approvedCITEvaluate(order: "r-1", amount: 1500))
            let refund = try await h.insert("refund", order: "r-1", payload: #"{"amountCents": 500}"#)
            h.sandbox.sandbox.setFaults([FaultRule(route: Self.refundRoute, kind: .resetAfterProcessing, count: 1)])
            try await h.runWorker(h.quickSettle()) { try await h.waitUntilSettled() }

            let row = try await h.event(refund)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try await h.actions(of: refund) == ["send", "lookup"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [500])
            #expect(h.refundRequests() == 1)
        }
    }

    @Test func aRefundThatTimedOutWhileFlexChargeWasStillApplyingItIsNotSentAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "r-2", payload: h.approvedCITEvaluate(order: "r-2", amount: 1500))
            let refund = try await h.insert("refund", order: "r-2", payload: #"{"amountCents": 700}"#)
            // FlexCharge takes 2.5 s and applies the refund after the worker's 1 s timeout gave up.
            h.sandbox.sandbox.setFaults([FaultRule(route: Self.refundRoute, kind: .latency, latencyMilliseconds: 2500, count: 1)])
            var configuration = h.configuration()
            configuration.client = FlexChargeClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(1))
            configuration.lookupSettleTime = .seconds(4)
            try await h.runWorker(configuration) { try await h.waitUntilSettled(timeout: .seconds(30)) }

            let row = try await h.event(refund)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try await h.actions(of: refund) == ["send", "lookup"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [700])
        }
    }

    @Test func aRefundAnswered502IsLookedUpAndSentAgainOnlyBecauseFlexChargeDidNotApplyIt() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "r-3", payload: h.approvedCITEvaluate(order: "r-3", amount: 1500))
            let first = try await h.insert("refund", order: "r-3", payload: #"{"amountCents": 300}"#)
            let second = try await h.insert("refund", order: "r-3", payload: #"{"amountCents": 200}"#)
            // The second refund's first call is refused with a 502 before FlexCharge acts.
            try await h.runWorker(h.quickSettle()) {
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [first])
                h.sandbox.sandbox.setFaults([FaultRule(route: Self.refundRoute, kind: .status, status: 502, count: 1)])
                try await h.waitUntilSettled()
            }
            #expect(try await h.event(second).decode("state", as: String.self) == "succeeded")
            // Looked up (the earlier refund of 3.00 is accounted for), found not applied, sent again.
            #expect(try await h.actions(of: second) == ["send", "lookup", "send"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [300, 200])
        }
    }

    @Test func aRefundWhoseLeaseExpiredUnderADeadWorkerIsLookedUpNotSentAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "r-4", payload: h.approvedCITEvaluate(order: "r-4", amount: 1500))
            try await h.runWorker { try await h.waitUntilSettled() }
            let orderSessionKey = try await h.event(evaluate).decode("order_session_key", as: String.self)
            // A worker claimed the refund, FlexCharge applied it, and the worker died before recording it.
            let refund = try await h.insert("refund", order: "r-4", payload: #"{"amountCents": 900}"#)
            try await h.session.execute(
                """
                UPDATE flexcharge.outbox SET state = 'running', attempts = 1, first_claimed_at = now(), environment = 'sandbox',
                       lease_owner = 'dead-worker', lease_expires_at = now() - interval '1 second', order_session_key = $2
                 WHERE id = $1
                """, [refund, orderSessionKey])
            try await h.refundOutsideTheOutbox(orderSessionKey: orderSessionKey, cents: 900)
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(refund)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try await h.actions(of: refund) == ["lease_expired", "lookup"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [900])
        }
    }

    @Test func aRefundFlexChargeCannotAccountForStopsForAnOperatorAndIsNeverResent() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "r-5", payload: h.approvedCITEvaluate(order: "r-5", amount: 1500))
            try await h.runWorker { try await h.waitUntilSettled() }
            let orderSessionKey = try await h.event(evaluate).decode("order_session_key", as: String.self)
            // Someone refunded 1.00 outside the outbox; then our refund's call is reset before it is processed.
            try await h.refundOutsideTheOutbox(orderSessionKey: orderSessionKey, cents: 100)
            let refund = try await h.insert("refund", order: "r-5", payload: #"{"amountCents": 400}"#)
            h.sandbox.sandbox.setFaults([FaultRule(route: Self.refundRoute, kind: .hang, latencyMilliseconds: 3000, count: 1)])
            var configuration = h.quickSettle()
            configuration.client = FlexChargeClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(1))
            try await h.runWorker(configuration) { try await h.waitUntilSettled(timeout: .seconds(30)) }

            let row = try await h.event(refund)
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try row.decode("last_error_class", as: String?.self) == "unresolved")
            let reason = try row.decode("last_error", as: String?.self) ?? ""
            #expect(reason.contains("1.00 refunded"), "\(reason)")
            #expect(reason.contains("4.00"), "\(reason)")
            #expect(try await h.actions(of: refund) == ["send", "lookup"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [100])

            // An operator's retry looks it up again first; still unresolved, still not sent.
            let action = try await OperatorActions(session: h.session, actor: "ops").retry(refund)
            #expect(action == "lookup")
            try await h.runWorker(configuration) { try await h.waitUntilSettled(timeout: .seconds(30)) }
            #expect(try await h.event(refund).decode("state", as: String.self) == "dead")
            #expect(try await h.actions(of: refund) == ["send", "lookup", "operator_retry", "lookup"])
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [100])
        }
    }

    @Test func aCancelWhoseAnswerWasLostIsLookedUpAndCarriesItsIdempotencyKey() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "c-1", payload: h.captureRequiredEvaluate(order: "c-1"))
            let cancel = try await h.insert("cancel", order: "c-1", payload: "{}")
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /orders/{id}/cancel", kind: .resetAfterProcessing, count: 1)])
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try await h.event(cancel).decode("state", as: String.self) == "succeeded")
            #expect(try await h.actions(of: cancel) == ["send", "lookup"])
            let key = try await h.event(cancel).decode("idempotency_key", as: String.self)
            let cancels = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /orders/{id}/cancel" }
            #expect(cancels.count == 1)
            #expect(cancels.allSatisfy { $0.idempotencyKey == key })
        }
    }

    @Test func anExternalCancelWhoseAnswerWasLostIsLookedUpByTheGatewaysOrderID() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let mit = try await h.insert("evaluate", order: "x-1", channel: "mit", payload: OutcomeLookupTests.mitEvaluate("x-1"))
            try await h.runWorker { try await h.waitUntil("SELECT state = 'awaiting_outcome' FROM flexcharge.outbox WHERE id = $1", [mit]) }
            let external = try await h.insert("external_cancel", order: "x-1", channel: "mit", payload: "{}")
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /orders/{id}/external-cancel", kind: .resetAfterProcessing, count: 1)])
            try await h.runWorker { try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [external]) }

            #expect(try await h.actions(of: external) == ["send", "lookup"])
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /orders/{id}/external-cancel" }.count == 1)
        }
    }

    @Test func aCaptureIsSentWithItsKeyAmountAndCurrencyAndALostAnswerIsLookedUpNotCapturedTwice() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let evaluate = try await h.insert("evaluate", order: "k-1", payload: h.captureRequiredEvaluate(order: "k-1", amount: 2500))
            let capture = try await h.insert("capture", order: "k-1", payload: #"{"amountCents": 2500}"#)
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /capture", kind: .resetAfterProcessing, count: 1)])
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try await h.event(evaluate).decode("decision", as: String?.self) == "CAPTUREREQUIRED")
            let row = try await h.event(capture)
            let lastError = try row.decode("last_error", as: String?.self) ?? ""
            #expect(try row.decode("state", as: String.self) == "succeeded", "\(lastError)")
            #expect(try await h.actions(of: capture) == ["send", "lookup"])
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.chargeCount(merchantOrderId: "k-1") == 1)
            let captures = ledger.requests.filter { $0.route == "POST /capture" }
            #expect(captures.count == 1)
            #expect(captures.first?.idempotencyKey == (try row.decode("idempotency_key", as: String.self)))
        }
    }

    @Test func aCaptureOfAnOrderFlexChargeNoLongerHoldsForCaptureFails() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.insert("evaluate", order: "k-2", payload: h.approvedCITEvaluate(order: "k-2"))
            let capture = try await h.insert("capture", order: "k-2", payload: #"{"amountCents": 1500, "currency": "USD"}"#)
            try await h.runWorker { try await h.waitUntilSettled() }
            let row = try await h.event(capture)
            #expect(try row.decode("state", as: String.self) == "failed")
            #expect((try row.decode("last_error", as: String?.self) ?? "").contains("capture refused"))
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "k-2") == 1)  // the evaluate's charge only
        }
    }
}

/// The rule itself, without HTTP: what each FlexCharge order state means for each follow-up.
@Suite struct FollowUpVerdictTests {
    private func order(_ status: String, refunded: Int? = nil) throws -> Order {
        var json = #"{"id": "fc-1", "statusName": "\#(status)""#
        if let refunded { json += #", "refundedAmount": \#(refunded)"# }
        return try JSONDecoder().decode(Order.self, from: Data((json + "}").utf8))
    }

    @Test func refundsCompareFlexChargesRefundedAmountWithTheOutboxsRecords() throws {
        let completed = try order("COMPLETED", refunded: 800)
        #expect(FollowUpVerdict.judge(.refund, order: completed, amountCents: 300, refundedBeforeCents: 500) == .applied(decision: "SUCCESS"))
        #expect(FollowUpVerdict.judge(.refund, order: completed, amountCents: 300, refundedBeforeCents: 800) == .notApplied)
        guard case .unresolved = FollowUpVerdict.judge(.refund, order: completed, amountCents: 300, refundedBeforeCents: 0) else {
            Issue.record("a refunded amount the outbox cannot account for must stop for an operator"); return
        }
        guard case .unresolved = FollowUpVerdict.judge(.refund, order: try order("COMPLETED"), amountCents: 300, refundedBeforeCents: 0) else {
            Issue.record("without a refunded amount nothing can be told"); return
        }
        #expect(FollowUpVerdict.judge(.refund, order: nil, amountCents: 300, refundedBeforeCents: 0) == .notApplied)
    }

    @Test func cancelsAreAppliedOnlyWhenTheOrderIsCancelled() throws {
        for kind in [ClaimedEvent.Kind.cancel, .externalCancel] {
            #expect(FollowUpVerdict.judge(kind, order: try order("CANCELLED"), amountCents: nil, refundedBeforeCents: nil) == .applied(decision: nil))
            #expect(FollowUpVerdict.judge(kind, order: try order("PROCESSING"), amountCents: nil, refundedBeforeCents: nil) == .notApplied)
            #expect(FollowUpVerdict.judge(kind, order: nil, amountCents: nil, refundedBeforeCents: nil) == .notApplied)
        }
    }

    @Test func capturesFollowTheOrdersCaptureState() throws {
        #expect(FollowUpVerdict.judge(.capture, order: try order("COMPLETED"), amountCents: 100, refundedBeforeCents: nil) == .applied(decision: "SUCCESS"))
        #expect(FollowUpVerdict.judge(.capture, order: try order("RETURNED"), amountCents: 100, refundedBeforeCents: nil) == .applied(decision: "SUCCESS"))
        #expect(FollowUpVerdict.judge(.capture, order: try order("CAPTUREREQUIRED"), amountCents: 100, refundedBeforeCents: nil) == .notApplied)
        guard case .impossible = FollowUpVerdict.judge(.capture, order: try order("CANCELLED"), amountCents: 100, refundedBeforeCents: nil) else {
            Issue.record("a cancelled order cannot be captured"); return
        }
        guard case .unresolved = FollowUpVerdict.judge(.capture, order: try order("ONHOLD"), amountCents: 100, refundedBeforeCents: nil) else {
            Issue.record("an order on hold cannot settle a capture"); return
        }
    }

    @Test func onlyRefundsAndTransmitsGoWithoutAnIdempotencyKeyAndOnlyTransmitsAreNeverLookedUp() {
        let keyed = ClaimedEvent.Kind.allCases.filter(\.carriesIdempotencyKey).map(\.rawValue).sorted()
        #expect(keyed == ["cancel", "capture", "evaluate", "external_cancel"])
        #expect(ClaimedEvent.Kind.allCases.filter { !$0.isLookedUpAfterAmbiguity } == [.transmit])
    }
}

extension WorkerHarness {
    static var credentials: MerchantCredentials {
        MerchantCredentials(mid: sandboxMerchant.mid, appKey: sandboxMerchant.appKey, appSecret: sandboxMerchant.appSecret)
    }

    /// The test configuration with a short refund settle time.
    func quickSettle() -> WorkerConfiguration {
        var configuration = configuration()
        configuration.lookupSettleTime = .milliseconds(200)
        return configuration
    }

    /// A CIT evaluate the sandbox answers CAPTUREREQUIRED (an authorization).
    func captureRequiredEvaluate(order: String, amount: Int = 1500) -> String {
        let body = approvedCITEvaluate(order: order, amount: amount)
        var object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        object["transactionType"] = "AUTHORIZATION"
        return String(decoding: (try? JSONSerialization.data(withJSONObject: object)) ?? Data(), as: UTF8.self)
    }

    /// The actions of an event's attempt ledger, in order.
    func actions(of id: Int64) async throws -> [String] {
        try await attempts(id).map { try $0.decode("action", as: String.self) }
    }

    /// Refund requests the sandbox received.
    func refundRequests() -> Int {
        sandbox.sandbox.ledger().requests.filter { $0.route == "POST /orders/{id}/refund" }.count
    }

    /// Refunds `cents` on a FlexCharge order as someone other than the worker (a portal user, a dead worker).
    func refundOutsideTheOutbox(orderSessionKey: String, cents: Int) async throws {
        let client = FlexChargeClient(environment: sandbox.environment, logger: Self.silent)
        do {
            _ = try await client.refund(orderId: orderSessionKey, amountCents: cents, credentials: Self.credentials)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
