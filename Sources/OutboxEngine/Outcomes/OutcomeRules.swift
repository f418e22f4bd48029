import FlexChargeAPI
import Foundation

/// What a later FlexCharge message means for an evaluate that awaits its outcome.
public struct OutcomeChange: Sendable, Equatable {
    /// The event's new `decision`.
    public var decision: String
    /// True when the order is final: the event leaves `awaiting_outcome` for `succeeded`.
    public var isFinal: Bool
}

/// The rules that turn webhooks and order lookups into outcome changes.
public enum OutcomeRules {
    /// The webhook events the receiver records (contract §6.7).
    public static let knownEvents: Set<String> = [
        "order.completed", "order.expired", "order.cancelled", "order.refunded", "order.capturerequired",
        "payment.chargeback.received", "challenge.presented", "challenge.attempted", "challenge.passed", "challenge.failed",
    ]

    /// The change a webhook brings; `nil` for events recorded only (refund, chargeback, challenge progress).
    public static func change(forWebhook event: String) -> OutcomeChange? {
        switch event {
        case "order.completed": OutcomeChange(decision: "APPROVED", isFinal: true)
        case "order.expired": OutcomeChange(decision: "EXPIRED", isFinal: true)
        case "order.cancelled": OutcomeChange(decision: "CANCELLED", isFinal: true)
        case "challenge.failed": OutcomeChange(decision: "DECLINED", isFinal: true)
        case "order.capturerequired": OutcomeChange(decision: "CAPTUREREQUIRED", isFinal: false)
        default: nil
        }
    }

    /// The change an order lookup brings; `nil` while the order is still being worked.
    /// A cancelled order past its expiry is `EXPIRED` (FlexCharge ends expired MIT orders as cancelled).
    public static func change(forOrder order: Order, expiry: Date?, now: Date) -> OutcomeChange? {
        switch order.statusName?.uppercased() ?? "" {
        case "COMPLETED", "RETURNED": return OutcomeChange(decision: "APPROVED", isFinal: true)
        case "CANCELLED":
            if let expiry, expiry <= now { return OutcomeChange(decision: "EXPIRED", isFinal: true) }
            return OutcomeChange(decision: "CANCELLED", isFinal: true)
        case "CAPTUREREQUIRED": return OutcomeChange(decision: "CAPTUREREQUIRED", isFinal: false)
        default: return nil
        }
    }

    /// Parses FlexCharge's ISO-8601 dates, with or without fractional seconds or a zone.
    public static func date(_ text: String?) -> Date? {
        guard var text, !text.isEmpty else { return nil }
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        if !text.hasSuffix("Z") && !text.contains("+") {
            text += "Z"
            return withFraction.date(from: text) ?? plain.date(from: text)
        }
        return nil
    }
}

/// When awaiting outcomes are looked up: first after `firstDelay`, then after `base`, doubling up to
/// `cap`, until the order is final or `expiryGrace` past its `expiryDateUtc` (`maxAge` after the
/// answer when the order has no expiry, e.g. a CIT challenge). Then the event goes `dead`.
public struct OutcomePolling: Sendable {
    public var firstDelay: Duration
    public var base: Duration
    public var cap: Duration
    public var expiryGrace: Duration
    public var maxAge: Duration
    /// Lookups claimed at a time (and run concurrently) per worker.
    public var batchSize: Int
    /// How long a claimed lookup is reserved for this worker (another worker retries it after).
    public var lease: Duration
    /// How often the worker checks for due lookups.
    public var interval: Duration

    public init(
        firstDelay: Duration = .seconds(60), base: Duration = .seconds(60), cap: Duration = .seconds(3600),
        expiryGrace: Duration = .seconds(3600), maxAge: Duration = .seconds(7 * 24 * 3600), batchSize: Int = 16,
        lease: Duration = .seconds(120), interval: Duration = .seconds(5)
    ) {
        self.firstDelay = firstDelay
        self.base = base
        self.cap = cap
        self.expiryGrace = expiryGrace
        self.maxAge = maxAge
        self.batchSize = batchSize
        self.lease = lease
        self.interval = interval
    }

    /// The wait after the `polls`-th lookup (1 for the first).
    public func delay(afterPoll polls: Int) -> Duration {
        let factor = Double(1 << min(max(polls - 1, 0), 20))
        return min(cap, base * factor)
    }
}
