import Foundation
import LibPQ
import Logging
import Synchronization

/// A worker's side of the shared rate limit toward FlexCharge (migrations/0020): before a call, the
/// event's merchant and environment must have a token. Tokens are leased from the shared bucket a
/// few at a time (``leaseSize(perSecond:)``, one statement for up to a tenth of a second's worth),
/// spent locally within ``leaseLife``, and forgotten after that, so all workers together keep to the
/// bucket's rate (see 0020 for the exact bound). An event that gets no token is given back before
/// any call through the breaker's give-back path (``BreakerBoard/giveBack(_:until:reason:errorClass:)``):
/// pending again, no attempt spent, not a failure, due when its turn is expected.
///
/// A limited merchant costs each worker busy with it at most about ten bucket statements a second
/// (one per lease, or per lease-sized wait when the bucket is empty), plus one give-back per event
/// held. An event whose merchant had no limit when it was claimed (the claim reads the setting) costs
/// nothing; a limit removed since is noticed by the bucket and remembered for ``unlimitedRecheck``.
/// If the bucket cannot be read (database trouble), the call goes ahead: the limit is a courtesy
/// toward FlexCharge, whose 429 is retried after its Retry-After anyway.
final class RateLimiter: Sendable {
    /// How long leased tokens may be spent.
    static let leaseLife: Duration = .milliseconds(250)
    /// How long "this merchant has no limit" is believed before asking again (a new limit takes
    /// effect within this time).
    static let unlimitedRecheck: Duration = .seconds(5)
    /// The furthest ahead a held event is scheduled.
    static let maxSpread: Duration = .seconds(60)

    /// Tokens asked for at once: a tenth of a second's worth, at least 1 (never more than the
    /// bucket's burst, `ceil(rate / 4)`).
    static func leaseSize(perSecond: Int) -> Int { max(1, (perSecond + 9) / 10) }

    private struct Allowance {
        var tokens = 0
        var expiresAt = ContinuousClock.now
        var perSecond: Int?
        var unlimitedUntil: ContinuousClock.Instant?
        /// No token before this (the bucket said so): don't ask until then.
        var emptyUntil: ContinuousClock.Instant?
        /// The next free turn for an event this worker holds back (events held one after another
        /// are spread at the rate, so they do not all come back at once).
        var nextTurn = ContinuousClock.now
    }

    private enum Verdict {
        case go
        case ask(want: Int)
        case hold(after: Duration)
    }

    private let session: PGSession
    private let board: BreakerBoard
    private let logger: Logger
    private let allowances = Mutex<[BreakerKey: Allowance]>([:])

    init(board: BreakerBoard, logger: Logger) {
        self.session = board.session
        self.board = board
        self.logger = logger
    }

    /// True when the event may be called now (a token spent); false when it was given back.
    func admit(_ event: ClaimedEvent) async -> Bool {
        // A merchant without a limit when its event was claimed costs no statement: with the database
        // away, asking would hold every call (and a shutdown) for a connect or statement timeout each.
        guard event.rateLimitPerSecond != nil, !Task.isCancelled else { return true }
        let key = BreakerKey(merchantID: event.merchantID, environment: event.environment)
        switch verdict(key, at: .now) {
        case .go: return true
        case .hold(let after): return await hold(event, key, after: after)
        case .ask(let want):
            let grant: (granted: Int, perSecond: Int?, wait: Double)
            do {
                let row = try await session.query(
                    "SELECT granted, per_second, wait_seconds FROM flexcharge.take_rate_tokens($1, $2, $3)",
                    [key.merchantID, key.environment, want]).first
                guard let row else { return true }
                grant = (try row.decode("granted"), try row.decode("per_second"), try row.decode("wait_seconds"))
            } catch {
                logger.warning("could not take a rate-limit token; calling anyway", metadata: [
                    "merchant_id": "\(key.merchantID)", "environment": "\(key.environment)", "error": "\(error)"])
                return true
            }
            if grant.perSecond != nil { WorkerMetrics.rateLimitTokens(environment: key.environment, granted: grant.granted) }
            // When the bucket is empty, this worker asks again once a whole lease may have refilled
            // (not at the next single token): at most about ten statements a second per worker and key.
            let wait = max(grant.wait + Double(Self.leaseSize(perSecond: grant.perSecond ?? 1) - 1) / Double(max(grant.perSecond ?? 1, 1)), 0.001)
            let now = ContinuousClock.now
            let admitted = allowances.withLock { all -> Bool in
                var allowance = all[key] ?? Allowance()
                allowance.perSecond = grant.perSecond
                defer { all[key] = allowance }
                guard grant.perSecond != nil else {
                    allowance.unlimitedUntil = now + Self.unlimitedRecheck
                    return true
                }
                allowance.unlimitedUntil = nil
                guard grant.granted > 0 else {
                    allowance.emptyUntil = now + .seconds(wait)
                    return false
                }
                allowance.emptyUntil = nil
                allowance.tokens = (allowance.expiresAt > now ? allowance.tokens : 0) + grant.granted - 1
                allowance.expiresAt = now + Self.leaseLife
                return true
            }
            return admitted ? true : await hold(event, key, after: .seconds(wait))
        }
    }

    /// What to do for `key` from what this worker already knows (no statement).
    private func verdict(_ key: BreakerKey, at now: ContinuousClock.Instant) -> Verdict {
        allowances.withLock { all in
            var allowance = all[key] ?? Allowance()
            defer { all[key] = allowance }
            if let until = allowance.unlimitedUntil, until > now { return .go }
            if allowance.tokens > 0 && allowance.expiresAt > now {
                allowance.tokens -= 1
                return .go
            }
            if let until = allowance.emptyUntil, until > now { return .hold(after: until - now) }
            return .ask(want: Self.leaseSize(perSecond: allowance.perSecond ?? 1))
        }
    }

    /// Gives the event back, due at its turn: the first after `after`, then one per 1/rate.
    private func hold(_ event: ClaimedEvent, _ key: BreakerKey, after: Duration) async -> Bool {
        let now = ContinuousClock.now
        let (turn, perSecond) = allowances.withLock { all -> (ContinuousClock.Instant, Int) in
            var allowance = all[key] ?? Allowance()
            let perSecond = max(allowance.perSecond ?? 1, 1)
            let turn = min(max(allowance.nextTurn, now + after), now + Self.maxSpread)
            allowance.nextTurn = turn + .seconds(1.0 / Double(perSecond))
            all[key] = allowance
            return (turn, perSecond)
        }
        WorkerMetrics.rateLimitWait(environment: key.environment)
        let until = Date().addingTimeInterval((turn - now).seconds)
        let reason = "held by the rate limit of \(key) (\(perSecond)/s): not sent, no attempt counted"
        await board.giveBack(event, until: until, reason: reason, errorClass: "rate_limit")
        return false
    }
}
