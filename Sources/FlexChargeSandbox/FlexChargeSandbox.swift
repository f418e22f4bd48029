import FlexChargeAPI
import Foundation
import Logging
import Synchronization

/// The FlexCharge sandbox simulator: merchants, tokens, orders, idempotency, faults, a controllable clock and a
/// ledger of everything received and charged.
///
/// Use it in-process with ``SandboxServer/start(_:logger:)``, or run it with the `flexcharge-sandbox` executable.
/// Tests can drive it directly (``ledger()``, ``reset()``, ``advanceClock(by:)``, ``setFaults(_:)``) or over the
/// `/_sandbox/...` control API.
public final class FlexChargeSandbox: Sendable {
    /// The configuration it was created with.
    public let configuration: SandboxConfiguration
    let merchantsByMid: [String: SandboxMerchant]
    let merchantsByAppKey: [String: SandboxMerchant]
    let state: Mutex<SandboxState>
    let clock = SandboxClock()
    let webhookURLs: Mutex<[String: String]>
    /// Whether any fault rule is set (lets fault-free requests skip the lock).
    let hasFaults: Atomic<Bool>
    let tokens = TokenIssuer()
    let webhooks: WebhookDispatcher
    let logger: Logger

    /// Creates a sandbox with fresh state.
    public init(configuration: SandboxConfiguration = .init(), logger: Logger = Logger(label: "FlexChargeSandbox")) {
        self.configuration = configuration
        self.merchantsByMid = Dictionary(configuration.merchants.map { ($0.mid, $0) }) { first, _ in first }
        self.merchantsByAppKey = Dictionary(configuration.merchants.map { ($0.appKey, $0) }) { first, _ in first }
        self.state = Mutex(SandboxState(faults: configuration.faults, seed: configuration.randomSeed, clock: clock))
        self.webhookURLs = Mutex(Dictionary(configuration.merchants.compactMap { m in m.webhookURL.map { (m.mid, $0) } }) { a, _ in a })
        self.hasFaults = Atomic(!configuration.faults.isEmpty)
        self.logger = logger
        self.webhooks = WebhookDispatcher(contentType: configuration.webhookContentType,
                                          maxAttempts: configuration.webhookMaxAttempts,
                                          isTestMode: configuration.isTestMode, logger: logger)
    }

    // MARK: Test control

    /// A copy of the ledger.
    public func ledger() -> SandboxLedger {
        let (stored, received) = state.withLock { ($0.ledger, $0.receivedRequests) }
        var ledger = stored
        ledger.requests = received.all.map(\.entry)  // formatted outside the lock
        return ledger
    }

    /// Forgets all tokens, orders, idempotency keys, faults, the ledger and the clock offset.
    public func reset() {
        state.withLock { $0 = SandboxState(faults: [], seed: configuration.randomSeed, clock: clock) }
        clock.reset()
        hasFaults.store(false, ordering: .relaxed)
        webhooks.clearReceived()
    }

    /// The sandbox clock.
    public func now() -> Date { clock.now() }

    /// Moves the sandbox clock forward (token expiry, idempotency window, MIT completion and expiry).
    public func advanceClock(by duration: Duration) {
        clock.advance(by: duration)
        settle()
    }

    /// Completes or expires the managed-MIT orders that are due at the current sandbox time (a served sandbox
    /// does this every second).
    public func settle() { mutate { $0.settle() } }

    /// Replaces the active fault rules.
    public func setFaults(_ rules: [FaultRule]) {
        state.withLock { $0.faults = rules }
        hasFaults.store(!rules.isEmpty, ordering: .relaxed)
    }

    /// The active fault rules (counted rules show their remaining count).
    public func faults() -> [FaultRule] { state.withLock { $0.faults } }

    /// Points a merchant's webhooks at `url` (`nil` disables them).
    public func setWebhookURL(_ url: String?, forMid mid: String) { webhookURLs.withLock { $0[mid] = url } }

    /// Completes a pending order now (charge + `order.completed`); false if unknown or not pending.
    @discardableResult
    public func completeOrder(id: String) -> Bool {
        mutate { state in
            guard let order = state.orders[id], !order.charged, order.status != .cancelled else { return false }
            state.charge(orderId: id)
            return true
        }
    }

    /// Expires a pending order now (`order.expired`); false if unknown or already final.
    @discardableResult
    public func expireOrder(id: String) -> Bool {
        mutate { state in
            guard let order = state.orders[id], !order.charged, order.status != .cancelled else { return false }
            state.end(orderId: id, decision: "EXPIRED")
            return true
        }
    }

    /// Emits a webhook for an existing order, e.g. `payment.chargeback.received` or `challenge.passed`
    /// (a passed challenge also approves and charges a `CHALLENGE` order).
    @discardableResult
    public func trigger(event: String, orderId: String) -> Bool {
        mutate { state in
            guard let order = state.orders[orderId] else { return false }
            state.pendingWebhooks.append(.init(event: event, order: order))
            if event == "challenge.passed", order.decision == "CHALLENGE" { state.charge(orderId: orderId) }
            if event == "challenge.failed", order.decision == "CHALLENGE" { state.end(orderId: orderId, decision: "DECLINED") }
            return true
        }
    }

    /// Inserts or alters an order without touching the ledger (plants differences for reconciliation tests).
    /// Returns the order id.
    @discardableResult
    public func plantOrder(_ plant: SandboxOrderPlant) -> String {
        state.withLock { state in
            let id = plant.id ?? UUID().uuidString.lowercased()
            var order = state.orders[id] ?? SandboxOrder(
                id: id, mid: plant.mid ?? configuration.merchants[0].mid, merchantOrderId: plant.merchantOrderId ?? id,
                amountCents: plant.amountCents ?? 1000, currency: "USD", isMIT: plant.isMIT ?? false,
                status: .completed, decision: "APPROVED", createdAt: state.now(), generatedReference: referenceOfOwn(orderId: id))
            if let value = plant.merchantOrderId { order.merchantOrderId = value }
            if let value = plant.amountCents { order.amountCents = value }
            if let value = plant.status.flatMap(SandboxOrder.Status.init(rawValue:)) { order.status = value }
            if let value = plant.decision { order.decision = value }
            if let value = plant.charged { order.charged = value }
            state.insert(order)
            return id
        }
    }

    /// Webhook deliveries received by the built-in sink `POST /_sandbox/webhook-sink`.
    public func receivedWebhooks() -> [ReceivedWebhook] { webhooks.received() }

    // MARK: Internals

    /// Runs a state change and hands any webhooks it produced to the dispatcher.
    func mutate<T: Sendable>(_ body: (inout SandboxState) -> T) -> T {
        let (result, events) = state.withLock { state -> (T, [SandboxState.PendingWebhook]) in
            let result = body(&state)
            defer { state.pendingWebhooks.removeAll() }
            return (result, state.pendingWebhooks)
        }
        for event in events { deliver(event) }
        return result
    }

    private func deliver(_ event: SandboxState.PendingWebhook) {
        guard let merchant = merchantsByMid[event.order.mid], let key = merchant.webhookSubscriberKey,
              let url = webhookURLs.withLock({ $0[event.order.mid] }) else { return }
        let now = now()
        webhooks.deliver(event: event.event, order: event.order, at: now, url: url, subscriberKey: key) { attempt in
            self.state.withLock { $0.ledger.webhooks.append(attempt) }
        }
    }
}

/// Fields to insert or alter an order with ``FlexChargeSandbox/plantOrder(_:)`` or `POST /_sandbox/orders`.
public struct SandboxOrderPlant: Sendable, Codable, Hashable {
    public var id: String?
    public var mid: String?
    public var merchantOrderId: String?
    public var amountCents: Int?
    public var isMIT: Bool?
    /// Status code 0–7.
    public var status: Int?
    /// `/evaluate`-style decision, e.g. `APPROVED`.
    public var decision: String?
    public var charged: Bool?

    /// Creates a plant; unspecified fields keep their value (or a default for a new order).
    public init(id: String? = nil, mid: String? = nil, merchantOrderId: String? = nil, amountCents: Int? = nil,
                isMIT: Bool? = nil, status: Int? = nil, decision: String? = nil, charged: Bool? = nil) {
        self.id = id
        self.mid = mid
        self.merchantOrderId = merchantOrderId
        self.amountCents = amountCents
        self.isMIT = isMIT
        self.status = status
        self.decision = decision
        self.charged = charged
    }
}
