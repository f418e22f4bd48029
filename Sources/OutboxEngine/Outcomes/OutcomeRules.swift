import FlexChargeAPI
import Foundation

/// Rules of the outcome lookups that are not about decisions (those live in ``Decision``).
enum OutcomeRules {
    /// Parses FlexCharge's ISO-8601 dates, with or without fractional seconds or a zone.
    static func date(_ text: String?) -> Date? {
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
