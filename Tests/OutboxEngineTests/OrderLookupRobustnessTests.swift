import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The worker's lookup after an ambiguous evaluate, against a simulator that answers `GET /orders?query=` as the
/// documented name search (not by the gateway's order id): it still finds the right order, or parks the event for
/// an operator; the evaluate is never sent twice (issue 16).
@Suite struct OrderLookupRobustnessTests {
    /// Evaluates FlexCharge processed for this order (the sandbox's request log).
    static func processedEvaluates(_ h: WorkerHarness, order: String) -> Int {
        h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == order && $0.processed }.count
    }

    /// Other orders of the same payer name are placed first, so the name search returns more than the one sought.
    static func placeNeighbours(_ h: WorkerHarness) async throws -> [Int64] {
        var ids: [Int64] = []
        for order in ["n-1", "n-2"] { ids.append(try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order))) }
        try await h.runWorker { try await h.waitUntilSettled() }
        return ids
    }

    @Test func aNameSearchStillFindsTheOrderAnAmbiguousEvaluateCreated() async throws {
        try await WorkerHarness.with(configure: { $0.orderSearch = .name }) { h in
            try await h.enrol("m1")
            _ = try await Self.placeNeighbours(h)
            // FlexCharge processes the evaluate (and charges), then the connection drops.
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .resetAfterProcessing, count: 1)])
            let id = try await h.insert("evaluate", order: "o1", payload: h.approvedCITEvaluate(order: "o1"))
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["send", "lookup"])
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "o1" }.count == 1)
            #expect(ledger.chargeCount(merchantOrderId: "o1") == 1)
            let charge = ledger.charges.first { $0.merchantOrderId == "o1" }
            #expect(try row.decode("order_session_key", as: String?.self) == charge?.orderSessionKey)
        }
    }

    /// The call timed out before FlexCharge processed it: reading every order placed since the event was written
    /// proves nothing was created, so the evaluate is sent again under its own key and processed once.
    @Test func anEvaluateThatNeverArrivedIsSentAgainOnceAbsenceIsProved() async throws {
        try await WorkerHarness.with(configure: { $0.orderSearch = .name }) { h in
            try await h.enrol("m1")
            _ = try await Self.placeNeighbours(h)
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .hang, latencyMilliseconds: 3000, count: 1)])
            let id = try await h.insert("evaluate", order: "o2", payload: h.approvedCITEvaluate(order: "o2"))
            var configuration = h.configuration()
            configuration.client = FlexChargeClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(1))
            try await h.runWorker(configuration) { try await h.waitUntilSettled(timeout: .seconds(30)) }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            let attempts = try await h.attempts(id)
            let actions = try attempts.map { try $0.decode("action", as: String.self) }
            let errors = try attempts.map { try $0.decode("error", as: String?.self) ?? "" }
            #expect(actions == ["send", "lookup", "send"], "\(errors)")
            #expect(Self.processedEvaluates(h, order: "o2") == 1)
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "o2") == 1)
        }
    }

    /// FlexCharge's `referenceNumber` is its own, so no order carries the gateway's id; the order FlexCharge created
    /// (same amount and payer) is a partial match, never trusted either way: the event is parked for an operator.
    @Test func anOrderThatCannotBeIdentifiedIsParkedNotSentAgain() async throws {
        try await WorkerHarness.with(configure: { $0.orderSearch = .name; $0.referenceNumbers = .generated }) { h in
            try await h.enrol("m1")
            let neighbours = try await Self.placeNeighbours(h)
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .resetAfterProcessing, count: 1)])
            let id = try await h.insert("evaluate", order: "o3", payload: h.approvedCITEvaluate(order: "o3"))
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try row.decode("last_error_class", as: String?.self) == "unresolved")
            let charge = try #require(h.sandbox.sandbox.ledger().charges.first { $0.merchantOrderId == "o3" })
            let reason = try row.decode("last_error", as: String?.self) ?? ""
            #expect(reason.contains(charge.orderSessionKey), "\(reason)")
            #expect(!reason.contains("approve-o3@example.com"))
            #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["send", "lookup"])
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "o3" }.count == 1)
            #expect(h.sandbox.sandbox.ledger().chargeCount(merchantOrderId: "o3") == 1)
            // An operator's retry looks it up again first: still unresolved, still not sent.
            #expect(try await OperatorActions(session: h.session, actor: "ops").retry(id) == "lookup")
            try await h.runWorker { try await h.waitUntilSettled() }
            #expect(try await h.event(id).decode("state", as: String.self) == "dead")
            #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["send", "lookup", "operator_retry", "lookup"])
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "o3" }.count == 1)
            // The neighbours were answered directly and are untouched by it.
            for neighbour in neighbours { #expect(try await h.event(neighbour).decode("state", as: String.self) == "succeeded") }
        }
    }
}
