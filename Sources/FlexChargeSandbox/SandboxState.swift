import FlexChargeAPI
import Foundation

/// All mutable sandbox state, guarded by one lock in ``FlexChargeSandbox``.
struct SandboxState: Sendable {
    /// A token the sandbox issued.
    struct IssuedToken: Sendable {
        var mid: String
        var expiresAt: Date
    }

    /// A webhook waiting to be delivered.
    struct PendingWebhook: Sendable {
        var event: String
        var order: SandboxOrder
    }

    let clock: SandboxClock
    var tokens: [String: IssuedToken] = [:]
    var idempotency = IdempotencyStore()
    var orders: [String: SandboxOrder] = [:]
    /// Order ids in creation order (for listing).
    var orderIds: [String] = []
    /// `mid|merchantOrderId` → latest FlexCharge order id.
    var ordersByMerchantOrderId: [String: String] = [:]
    /// `/tokenize` token → PAN (sandbox test cards only).
    var vault: [String: String] = [:]
    /// The ledger's charges, refunds and webhooks (its requests are kept in `receivedRequests`).
    var ledger = SandboxLedger()
    /// Every request received, in order (formatted into ``SandboxLedger/requests`` when the ledger is read).
    var receivedRequests = RequestLog()
    /// Request bodies, kept only after ``FlexChargeSandbox/recordRequestBodies()`` (`nil`: not recording).
    var requestBodies: [SandboxRequestBody]?
    var faults: [FaultRule]
    var random: SeededGenerator
    var pendingWebhooks: [PendingWebhook] = []

    init(faults: [FaultRule], seed: UInt64, clock: SandboxClock) {
        self.clock = clock
        self.faults = faults
        self.random = SeededGenerator(seed: seed)
    }

    /// Sandbox clock: real time moved forward by every `advanceClock`.
    func now() -> Date { clock.now() }

    /// Adds `order`, indexed by id and merchant order id.
    mutating func insert(_ order: SandboxOrder) {
        if orders[order.id] == nil { orderIds.append(order.id) }
        orders[order.id] = order
        ordersByMerchantOrderId["\(order.mid)|\(order.merchantOrderId)"] = order.id
    }

    /// Marks an order as charged once and records the charge in the ledger.
    mutating func charge(orderId: String) {
        guard var order = orders[orderId], !order.charged else { return }
        order.charged = true
        order.status = .completed
        order.decision = "APPROVED"
        orders[orderId] = order
        ledger.charges.append(.init(time: Self.iso(now()), mid: order.mid, merchantOrderId: order.merchantOrderId,
                                    orderSessionKey: order.id, amountCents: order.amountCents, currency: order.currency))
        pendingWebhooks.append(.init(event: "order.completed", order: order))
    }

    /// Ends a pending order without a charge (`EXPIRED` or `CANCELLED`), emitting the matching webhook.
    mutating func end(orderId: String, decision: String) {
        guard var order = orders[orderId] else { return }
        order.status = .cancelled
        order.decision = decision
        order.completesAt = nil
        orders[orderId] = order
        pendingWebhooks.append(.init(event: decision == "EXPIRED" ? "order.expired" : "order.cancelled", order: order))
    }

    /// Moves pending managed-MIT orders whose time has come: completion first, expiry otherwise.
    mutating func settle() {
        let now = now()
        for id in orderIds {
            guard let order = orders[id], order.isMIT, order.status == .processing, order.decision == "SUBMITTED" else { continue }
            if let completesAt = order.completesAt, completesAt <= now, order.expiryDate.map({ completesAt < $0 }) ?? true {
                charge(orderId: id)
            } else if let expiry = order.expiryDate, expiry <= now {
                end(orderId: id, decision: "EXPIRED")
            }
        }
    }

    /// Picks the fault for a request on `route`, consuming counted rules.
    mutating func fault(for route: String, mid: String? = nil) -> FaultRule? {
        for index in faults.indices where faults[index].matches(route, mid: mid) {
            if let count = faults[index].count {
                guard count > 0 else { continue }
                faults[index].count = count - 1
                return faults[index]
            }
            if let probability = faults[index].probability, Double.random(in: 0..<1, using: &random) < probability {
                return faults[index]
            }
        }
        return nil
    }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
