/// Exponential backoff with full jitter: the n-th retry waits a uniformly random time between
/// zero and `min(cap, base × 2^(n-1))`, and never less than the server's `Retry-After`.
///
/// Full jitter spreads the retries of many workers that failed at the same moment (a FlexCharge
/// outage) instead of sending them back in waves.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration
    /// Attempts before an event is declared dead (the first try counts as attempt 1).
    public var maxAttempts: Int

    public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(300), maxAttempts: Int = 12) {
        self.base = base
        self.cap = cap
        self.maxAttempts = maxAttempts
    }

    /// The wait before the retry that follows attempt number `attempt` (1-based).
    public func delay<G: RandomNumberGenerator>(
        afterAttempt attempt: Int, retryAfter: Duration? = nil, using generator: inout G
    ) -> Duration {
        let exponent = min(max(attempt - 1, 0), 40)
        let ceilingMs = min(Double(cap.milliseconds), Double(base.milliseconds) * Double(1 << min(exponent, 30)))
        let jittered = Duration.milliseconds(Int64(Double.random(in: 0...max(ceilingMs, 0), using: &generator)))
        guard let retryAfter else { return jittered }
        return max(jittered, retryAfter)
    }

    public func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, retryAfter: retryAfter, using: &generator)
    }

    /// True when `attempt` was the last one allowed.
    public func isExhausted(afterAttempt attempt: Int) -> Bool { attempt >= maxAttempts }
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
