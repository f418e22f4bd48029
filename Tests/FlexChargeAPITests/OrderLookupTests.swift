import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// ``FlexChargeClient/findOrder(_:credentials:)`` against the simulator in each of its `query` and `referenceNumber`
/// modes: it finds the order by more than one guess, proves absence only by reading the whole window, and never
/// accepts a partial match.
@Suite struct OrderLookupTests {
    static func identity(_ h: SandboxHarness, orderId: String, amount: Int = 1500, email: String = "shopper@example.com")
        -> OrderIdentity {
        OrderIdentity(merchantOrderId: orderId, placedAfter: Date().addingTimeInterval(-300), amountCents: amount,
                      currency: "USD", email: email, firstName: "Joe", lastName: "Jones")
    }

    static func lookups(_ h: SandboxHarness) -> [String?] {
        h.sandbox.ledger().requests.filter { $0.route == "GET /orders" }.map(\.status)
    }

    @Test(arguments: OrderSearch.allCases)
    func findsTheOrderWhateverTheQueryMatches(search: OrderSearch) async throws {
        try await SandboxHarness.with(configure: { $0.orderSearch = search }) { h in
            for other in ["L-0", "L-2"] { _ = try await h.client.evaluate(h.evaluateRequest(orderId: other), credentials: h.credentials) }
            let mine = try await h.client.evaluate(h.evaluateRequest(orderId: "L-1"), credentials: h.credentials)
            let result = try await h.client.findOrder(Self.identity(h, orderId: "L-1"), credentials: h.credentials)
            guard case .found(let order) = result else { Issue.record("not found: \(result)"); return }
            #expect(order.id == mine.body.orderId)
            // By order id one search does; as a name search the payer's name is the second guess.
            #expect(Self.lookups(h).count == (search == .orderId ? 1 : 2))
        }
    }

    @Test(arguments: OrderSearch.allCases)
    func absenceIsProvedByReadingTheWholeWindow(search: OrderSearch) async throws {
        try await SandboxHarness.with(configure: { $0.orderSearch = search }) { h in
            for index in 0..<150 {
                _ = try await h.client.evaluate(h.evaluateRequest(orderId: "W-\(index)", email: "w\(index)@example.com"), credentials: h.credentials)
            }
            let result = try await h.client.findOrder(Self.identity(h, orderId: "NEVER-SENT"), credentials: h.credentials)
            #expect(result == .notFound)
            // The order id (one page), the payer's name (a name search finds all 150 orders of Joe Jones: two pages),
            // then the window (150 orders: two pages of 100).
            #expect(Self.lookups(h).count == (search == .orderId ? 4 : 5))
        }
    }

    /// A read that fails in a way another try may not (a 5xx here) is tried again within the lookup, up to
    /// ``ReadRetry/tries`` times: one flaky page no longer fails the whole lookup. A 429 is not tried again.
    @Test func aFailedReadIsTriedAgainWithinTheLookupButNotA429() async throws {
        try await SandboxHarness.with { h in
            let mine = try await h.client.evaluate(h.evaluateRequest(orderId: "F-1"), credentials: h.credentials)
            h.sandbox.setFaults([FaultRule(route: "GET /orders", kind: .status, status: 502, count: ReadRetry.tries - 1)])
            let found = try await h.client.findOrder(Self.identity(h, orderId: "F-1"), credentials: h.credentials)
            guard case .found(let order) = found else { Issue.record("not found: \(found)"); return }
            #expect(order.id == mine.body.orderId)
            #expect(Self.lookups(h).count == ReadRetry.tries)

            h.sandbox.setFaults([FaultRule(route: "GET /orders", kind: .status, status: 502, count: ReadRetry.tries)])
            await #expect(throws: FlexChargeError.self) { try await h.client.findOrder(Self.identity(h, orderId: "F-1"), credentials: h.credentials) }
            #expect(Self.lookups(h).count == 2 * ReadRetry.tries, "gave up after \(ReadRetry.tries) tries")

            h.sandbox.setFaults([FaultRule(route: "GET /orders", kind: .rateLimit, retryAfterSeconds: 1, count: 1)])
            let limited = await #expect(throws: FlexChargeError.self) {
                try await h.client.findOrder(Self.identity(h, orderId: "F-1"), credentials: h.credentials)
            }
            #expect(limited?.httpStatus == 429)
            #expect(Self.lookups(h).count == 2 * ReadRetry.tries + 1, "a 429 is not tried again")
        }
    }

    /// FlexCharge's own reference numbers: the order id is never matched, and an order with the request's amount and
    /// payer under another reference leaves it unresolved (never "not found", which would send again).
    @Test(arguments: OrderSearch.allCases)
    func aReferenceThatIsNotTheOrderIdLeavesItUnresolved(search: OrderSearch) async throws {
        try await SandboxHarness.with(configure: { $0.orderSearch = search; $0.referenceNumbers = .generated }) { h in
            let mine = try await h.client.evaluate(h.evaluateRequest(orderId: "G-1"), credentials: h.credentials)
            let result = try await h.client.findOrder(Self.identity(h, orderId: "G-1"), credentials: h.credentials)
            guard case .unresolved(let reason) = result else { Issue.record("expected unresolved: \(result)"); return }
            #expect(reason.contains(try #require(mine.body.orderId)))
            #expect(!reason.contains("shopper@example.com"))
            // An order of another payer and amount is not mistaken for it: absence is certain.
            let stranger = try await h.client.findOrder(Self.identity(h, orderId: "G-2", amount: 1700, email: "x@example.com"),
                                                        credentials: h.credentials)
            #expect(stranger == .notFound)
        }
    }

    /// Two orders carry the order id (evaluated twice under two keys), or the one that does disagrees with the
    /// request: no guess is trusted.
    @Test func twoOrdersOrADisagreeingOneLeaveItUnresolved() async throws {
        try await SandboxHarness.with { h in
            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "TWICE"), credentials: h.credentials)
            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "TWICE"), credentials: h.credentials)
            let twice = try await h.client.findOrder(Self.identity(h, orderId: "TWICE"), credentials: h.credentials)
            guard case .unresolved(let reason) = twice else { Issue.record("expected unresolved: \(twice)"); return }
            #expect(reason.contains("2 FlexCharge orders"))

            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "ONCE", amount: 1500), credentials: h.credentials)
            let other = try await h.client.findOrder(Self.identity(h, orderId: "ONCE", amount: 1600), credentials: h.credentials)
            guard case .unresolved(let amountReason) = other else { Issue.record("expected unresolved: \(other)"); return }
            #expect(amountReason.contains("amount"))
        }
    }
}
