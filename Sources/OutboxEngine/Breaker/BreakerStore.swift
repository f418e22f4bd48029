import Foundation
import LibPQ

/// The breaker's statements (table `flexcharge.circuit_breakers`, migrations/0013). Transitions
/// are decided by ``CircuitBreaker`` and written with a compare-and-set on `version`, so two
/// workers that decide at once never both win (one re-reads and decides again).
struct BreakerStore: Sendable {
    init() {}

    /// Every breaker that is not closed or is counting failures (what a worker keeps in memory).
    func active(on session: PGSession) async throws -> [BreakerKey: CircuitBreaker] {
        let rows = try await session.query(
            "SELECT * FROM flexcharge.circuit_breakers WHERE state <> 'closed' OR failures > 0").rows
        var breakers: [BreakerKey: CircuitBreaker] = [:]
        for row in rows {
            let (key, breaker, _) = try Self.decode(row)
            breakers[key] = breaker
        }
        return breakers
    }

    /// One breaker and its version (`nil`: none was ever written for this key).
    func read(_ key: BreakerKey, on session: PGSession) async throws -> (CircuitBreaker, Int64)? {
        guard let row = try await session.query(
            "SELECT * FROM flexcharge.circuit_breakers WHERE merchant_id = $1 AND environment = $2",
            [key.merchantID, key.environment]).first
        else { return nil }
        let (_, breaker, version) = try Self.decode(row)
        return (breaker, version)
    }

    /// Applies `input` to the stored breaker (compare-and-set, re-read and re-decided when another
    /// worker changed it meanwhile). Returns the breaker as stored afterwards and whether this call
    /// changed it.
    func apply(
        _ input: CircuitBreaker.Input, to key: BreakerKey, policy: BreakerPolicy, now: @Sendable () -> Date = { Date() },
        on session: PGSession
    ) async throws -> (breaker: CircuitBreaker, changed: Bool) {
        for _ in 0..<8 {
            let stored = try await read(key, on: session)
            let current = stored?.0 ?? CircuitBreaker()
            guard let next = current.applying(input, at: now(), policy: policy) else { return (current, false) }
            let parameters: [any PGEncodable] = [
                key.merchantID, key.environment, next.phase.rawValue, next.failures, next.lastFailureAt, next.lastError,
                next.trips, next.openedAt, next.retryAt, next.probeOwner, next.closedAt,
            ]
            let written: Int
            if let (_, version) = stored {
                written = try await session.execute(
                    """
                    UPDATE flexcharge.circuit_breakers
                       SET state = $3, failures = $4, last_failure_at = $5, last_error = $6, trips = $7, opened_at = $8,
                           retry_at = $9, probe_owner = $10, closed_at = $11, updated_at = now(), version = version + 1
                     WHERE merchant_id = $1 AND environment = $2 AND version = $12
                    """, parameters + [version])
            } else {
                written = try await session.execute(
                    """
                    INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, last_failure_at,
                                                             last_error, trips, opened_at, retry_at, probe_owner, closed_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                    ON CONFLICT (merchant_id, environment) DO NOTHING
                    """, parameters)
            }
            if written == 1 { return (next, true) }
        }
        // Contended for eight rounds: leave the decision to the next report.
        return (try await read(key, on: session)?.0 ?? CircuitBreaker(), false)
    }

    /// Gives back an event held before any call (by its breaker, or for want of a rate-limit token:
    /// `errorClass` 'breaker' or 'rate_limit'): pending again at `until`, its claim
    /// not counted as an attempt, no attempt-ledger row (no call was made). `first_claimed_at`
    /// (where FlexCharge's idempotency window starts at the latest) is cleared only when the ledger
    /// shows no call ever made for the event (no send, lookup or expired lease): the attempts
    /// counter cannot tell, an operator's retry sets it to 0. So a hold never restarts the window of
    /// an event that may have reached FlexCharge, and an evaluate held through a long outage before
    /// its first call keeps its full window. Only a row this worker still leases is touched.
    func holdBack(
        _ eventID: Int64, worker: String, until: Date, reason: String, errorClass: String = "breaker", on session: PGSession
    ) async throws {
        try await session.execute(
            """
            UPDATE flexcharge.outbox o
               SET state = 'pending', attempts = greatest(o.attempts - 1, 0), lease_owner = NULL, lease_expires_at = NULL,
                   first_claimed_at = CASE WHEN EXISTS (
                                               SELECT 1 FROM flexcharge.attempts a
                                                WHERE a.event_id = o.id AND a.action IN ('send', 'lookup', 'lease_expired'))
                                           THEN o.first_claimed_at END,
                   next_attempt_at = greatest($3, now()), last_error_class = $5, last_error = $4, updated_at = now()
             WHERE o.id = $1 AND o.state = 'running' AND o.lease_owner = $2
            """, [eventID, worker, until, reason, errorClass])
    }

    /// Breakers per environment and state (for the gauge; bounded: 2 environments x 3 states).
    func counts(on session: PGSession) async throws -> [(environment: String, state: String, count: Int)] {
        try await session.query(
            "SELECT environment, state, count(*)::bigint AS n FROM flexcharge.circuit_breakers GROUP BY 1, 2"
        ).rows.map { (try $0.decode("environment"), try $0.decode("state"), try $0.decode("n")) }
    }

    static func decode(_ row: PGRow) throws -> (BreakerKey, CircuitBreaker, Int64) {
        var breaker = CircuitBreaker()
        breaker.phase = CircuitBreaker.Phase(rawValue: try row.decode("state")) ?? .open
        breaker.failures = try row.decode("failures")
        breaker.lastFailureAt = try row.decode("last_failure_at")
        breaker.lastError = try row.decode("last_error")
        breaker.trips = try row.decode("trips")
        breaker.openedAt = try row.decode("opened_at")
        breaker.retryAt = try row.decode("retry_at")
        breaker.probeOwner = try row.decode("probe_owner")
        breaker.closedAt = try row.decode("closed_at")
        let key = BreakerKey(merchantID: try row.decode("merchant_id"), environment: try row.decode("environment"))
        return (key, breaker, try row.decode("version"))
    }
}
