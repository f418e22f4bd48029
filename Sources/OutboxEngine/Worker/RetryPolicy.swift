import Foundation

/// The one home of the retry rules: when a failed event is tried again (``backoff``), when it is
/// given up as dead (``isExhausted(afterAttempt:)``), and until when it may be sent again under its
/// idempotency key (``idempotencyWindowHasPassed(firstSentAt:now:)``).
///
/// Everything that applies these rules asks this value: the worker's delivery (`EventDelivery`),
/// the lease rescue (`flexcharge.rescue_expired_leases`, migrations/0036, is passed ``maxAttempts``
/// and ``lookupLimit``, and turns an event dead exactly when ``isExhausted(afterAttempt:)`` does for a
/// kind never looked up, when ``mayLookUp(afterAttempt:)`` stops for one that is;
/// `RetryPolicyAgreementTests` holds the two to the same answers) and the operator's
/// `retry` (`OperatorActions`). The worker and `flexcharge-outbox retry` take the same command-line
/// options for it.
public struct RetryPolicy: Sendable, Equatable {
    /// Retry timing: exponential backoff with full jitter.
    public var backoff: Backoff
    /// Attempts before an event is declared dead (the first try counts as attempt 1).
    public var maxAttempts: Int
    /// FlexCharge keeps an idempotency key for this long; an evaluate first sent longer ago is
    /// never sent again (it is looked up instead).
    public var idempotencyWindow: Duration

    /// Lookups allowed past ``maxAttempts`` for an event whose last call may have reached FlexCharge (an
    /// ambiguous send, or a lookup that failed after one). A lookup sends nothing, and giving up without one
    /// would leave an order FlexCharge may have evaluated (and charged), cancelled or refunded out of our
    /// records and reports until an operator acts. Past the limit the event is only looked up, never sent.
    public var lookupsPastTheLimit = 5

    /// A first send further in the future than this cannot be real (clock skew beyond it): the
    /// window then counts as passed, the safe side (look up, never re-send).
    static let clockSkewAllowance: Duration = .seconds(300)

    public init(backoff: Backoff = Backoff(), maxAttempts: Int = 12, idempotencyWindow: Duration = .seconds(24 * 3600)) {
        self.backoff = backoff
        self.maxAttempts = maxAttempts
        self.idempotencyWindow = idempotencyWindow
    }

    /// True when `attempt` (1-based) was the last one allowed: the event is dead (unless its last call may have
    /// reached FlexCharge: see ``mayLookUp(afterAttempt:)``).
    func isExhausted(afterAttempt attempt: Int) -> Bool { attempt >= maxAttempts }

    /// True when an event whose call `attempt` may have reached FlexCharge is still looked up rather than
    /// declared dead: up to ``lookupsPastTheLimit`` attempts past ``maxAttempts``.
    func mayLookUp(afterAttempt attempt: Int) -> Bool { attempt < lookupLimit }

    /// The attempts after which even a lookup is given up: ``maxAttempts`` plus ``lookupsPastTheLimit``.
    var lookupLimit: Int { maxAttempts + lookupsPastTheLimit }

    /// True when `attempt` was a lookup past the limit: whatever it found, the event is not sent again.
    func isPastTheLimit(_ attempt: Int) -> Bool { attempt > maxAttempts }

    /// The wait before the retry that follows `attempt` (see ``Backoff``).
    func delay<G: RandomNumberGenerator>(
        afterAttempt attempt: Int, retryAfter: Duration? = nil, using generator: inout G
    ) -> Duration {
        backoff.delay(afterAttempt: attempt, retryAfter: retryAfter, using: &generator)
    }

    func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        backoff.delay(afterAttempt: attempt, retryAfter: retryAfter)
    }

    /// True once FlexCharge may have forgotten the key of an event first sent at `firstSentAt`:
    /// sending it again could create a second order. A first send more than
    /// ``clockSkewAllowance`` in the future counts as passed.
    func idempotencyWindowHasPassed(firstSentAt: Date, now: Date = Date()) -> Bool {
        let elapsed = now.timeIntervalSince(firstSentAt)
        return elapsed >= idempotencyWindow.seconds || elapsed < -Self.clockSkewAllowance.seconds
    }
}
