/// Exponential backoff with full jitter: the n-th retry waits a uniformly random time between
/// zero and `min(cap, base × 2^(n-1))`, and never less than the server's `Retry-After`.
///
/// Full jitter spreads the retries of many workers that failed at the same moment (a FlexCharge
/// outage) instead of sending them back in waves. How many attempts an event gets is
/// ``RetryPolicy``'s rule, which holds this timing.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(300)) {
        self.base = base
        self.cap = cap
    }

    /// The longest wait before the retry that follows attempt number `attempt` (1-based), before
    /// jitter and `Retry-After`: `min(cap, base × 2^(attempt-1))`.
    func ceiling(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceilingMs = min(Double(cap.milliseconds), Double(base.milliseconds) * Double(1 << exponent))
        return .milliseconds(Int64(max(ceilingMs, 0)))
    }

    /// The wait before the retry that follows attempt number `attempt` (1-based): uniformly random
    /// in `0...ceiling(afterAttempt:)`, and never less than `retryAfter`.
    func delay<G: RandomNumberGenerator>(
        afterAttempt attempt: Int, retryAfter: Duration? = nil, using generator: inout G
    ) -> Duration {
        let ceilingMs = ceiling(afterAttempt: attempt).milliseconds
        let jittered = Duration.milliseconds(Int64.random(in: 0...ceilingMs, using: &generator))
        guard let retryAfter else { return jittered }
        return max(jittered, retryAfter)
    }

    func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, retryAfter: retryAfter, using: &generator)
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
