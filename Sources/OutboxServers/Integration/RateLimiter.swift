import Foundation
import Synchronization

/// A request rate: `perSecond` on average, `burst` at once (token buckets). `perSecond` 0 turns the limit off.
public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = max(0, perSecond.isFinite ? perSecond : 0)
        self.burst = max(1, burst)
    }

    /// No limit.
    public static let unlimited = RateLimit(perSecond: 0, burst: 1)
    var isUnlimited: Bool { perSecond == 0 }
}

/// Token buckets per client address plus one for everyone: a request is admitted when both its client's
/// bucket and the global bucket hold a token. A refused request gets the wait after which a token will be
/// there (for `Retry-After`).
///
/// At most `maximumClients` addresses are tracked; when that many are, buckets that have refilled are
/// forgotten, and if all are still in use, new addresses share one overflow bucket.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant

        mutating func take(_ limit: RateLimit, now: ContinuousClock.Instant) -> Duration? {
            let elapsed = now - updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(Double(limit.burst), tokens + max(0, seconds) * limit.perSecond)
            updated = now
            if tokens >= 1 {
                tokens -= 1
                return nil
            }
            // At most an hour, so a tiny rate cannot overflow the conversion.
            return .milliseconds(Int64(min(3_600_000, ((1 - tokens) / limit.perSecond * 1000).rounded(.up))))
        }

        func isFull(_ limit: RateLimit, now: ContinuousClock.Instant) -> Bool {
            let elapsed = now - updated
            return tokens + Double(elapsed.components.seconds) * limit.perSecond >= Double(limit.burst)
        }
    }

    private struct State {
        var global: Bucket
        var clients: [String: Bucket] = [:]
    }

    let perClient: RateLimit
    let global: RateLimit
    let maximumClients: Int
    private let state: Mutex<State>
    private static let overflowKey = "\u{0}overflow"

    init(perClient: RateLimit, global: RateLimit, maximumClients: Int = 10_000) {
        self.perClient = perClient
        self.global = global
        self.maximumClients = max(1, maximumClients)
        state = Mutex(State(global: Bucket(tokens: Double(global.burst), updated: .now)))
    }

    /// Nil when the request may go ahead; else how long the client should wait.
    func admit(client: String, now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { state in
            if !perClient.isUnlimited {
                var key = client
                if state.clients[key] == nil, state.clients.count >= maximumClients {
                    state.clients = state.clients.filter { !$0.value.isFull(perClient, now: now) }
                    if state.clients.count >= maximumClients { key = Self.overflowKey }
                }
                var bucket = state.clients[key] ?? Bucket(tokens: Double(perClient.burst), updated: now)
                let wait = bucket.take(perClient, now: now)
                state.clients[key] = bucket
                if let wait { return wait }
            }
            if !global.isUnlimited, let wait = state.global.take(global, now: now) { return wait }
            return nil
        }
    }
}
