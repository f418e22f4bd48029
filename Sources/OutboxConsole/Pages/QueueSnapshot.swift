import Foundation
import LibPQ
import OutboxEngine

/// What the queue page shows, read in one go: ``QueueStatus`` (the numbers and alerts of
/// `flexcharge-outbox status`, from the same code) plus what only the page draws: the lanes by
/// name, calls per minute over the last hour, each worker's next lease expiry, the breakers per
/// state and the rate limits with their buckets.
struct QueueSnapshot: Sendable {
    /// Calls to FlexCharge that finished in one minute (UTC), from the attempt ledger.
    struct Minute: Sendable, Equatable {
        let start: Date
        /// Answered (any HTTP answer the worker could act on: the ledger's failure_class is NULL).
        var answered: Int
        /// Failed: no answer, 5xx, 429, refused, ambiguous (failure_class set).
        var failed: Int
    }

    struct WorkerLease: Sendable {
        let worker: String, leases: Int, expired: Int, nextExpiry: Date?
    }

    /// A merchant's rate limit and, per environment, its bucket and the events it holds back now.
    struct RateLimit: Sendable {
        let merchantID: String, perSecond: Int, burst: Int
        let environment: String?, tokens: Double?, held: Int
    }

    let status: QueueStatus
    /// Lane names, most urgent first (`flexcharge.lanes`).
    let laneNames: [String]
    let minutes: [Minute]
    let workers: [WorkerLease]
    let rateLimits: [RateLimit]
    let readAt: Date

    /// How far back the throughput chart looks.
    static let throughputMinutes = 60

    static func read(_ session: PGSession) async throws -> QueueSnapshot {
        let status = try await QueueStatus.read(session)
        let laneNames = try await session.query("SELECT name FROM flexcharge.lanes ORDER BY lane").rows.map { try $0.decode("name", as: String.self) }
        let now: Date = try await session.query("SELECT now() AS now").first!.decode("now")
        let workers = try await session.query("SELECT worker, leases, expired, next_expiry FROM flexcharge.worker_leases ORDER BY worker").rows.map {
            WorkerLease(worker: try $0.decode("worker"), leases: try $0.decode("leases"), expired: try $0.decode("expired"),
                        nextExpiry: try $0.decode("next_expiry"))
        }
        return QueueSnapshot(status: status, laneNames: laneNames, minutes: try await throughput(session, now: now), workers: workers,
                             rateLimits: try await rateLimits(session), readAt: now)
    }

    /// Calls per minute for the last ``throughputMinutes`` whole minutes and the current one, oldest
    /// first, zero-filled.
    ///
    /// The ledger has no index on finished_at (each index costs every attempt written), but its ids
    /// grow with time: a binary search over the primary key finds the first attempt of the hour
    /// (about 25 index probes for a billion rows), and only that hour's rows are read. An attempt
    /// written a moment out of id order at the hour's edge may be missed; nothing inside the hour is.
    static func throughput(_ session: PGSession, now: Date) async throws -> [Minute] {
        let rows = try await session.query(
            """
            WITH RECURSIVE since AS (
                SELECT date_trunc('minute', $1::timestamptz, 'UTC') - make_interval(mins => $2) AS at
            ), search (lo, hi) AS (
                SELECT (SELECT min(id) FROM flexcharge.attempts), (SELECT max(id) FROM flexcharge.attempts)
                UNION ALL
                SELECT CASE WHEN probe.finished_at < since.at THEN probe.id + 1 ELSE search.lo END,
                       CASE WHEN probe.finished_at < since.at THEN search.hi ELSE (search.lo + search.hi) / 2 END
                  FROM search, since,
                       LATERAL (SELECT a.id, a.finished_at FROM flexcharge.attempts a
                                 WHERE a.id >= (search.lo + search.hi) / 2 ORDER BY a.id LIMIT 1) probe
                 WHERE search.lo < search.hi
            )
            SELECT date_trunc('minute', a.finished_at, 'UTC') AS minute,
                   count(*) FILTER (WHERE a.failure_class IS NULL)::bigint AS answered,
                   count(*) FILTER (WHERE a.failure_class IS NOT NULL)::bigint AS failed
              FROM flexcharge.attempts a, since
             WHERE a.id >= (SELECT max(lo) FROM search) AND a.finished_at >= since.at
               AND a.action IN ('send', 'lookup')
             GROUP BY 1
            """, [now, throughputMinutes])
        var counts: [Date: (Int, Int)] = [:]
        for row in rows.rows {
            counts[try row.decode("minute")] = (try row.decode("answered"), try row.decode("failed"))
        }
        let current = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 60).rounded(.down) * 60)
        return (0...throughputMinutes).reversed().map { back in
            let start = current.addingTimeInterval(-60 * Double(back))
            return Minute(start: start, answered: counts[start]?.0 ?? 0, failed: counts[start]?.1 ?? 0)
        }
    }

    /// Every merchant with a rate limit, per environment it has a bucket for (none yet: one row
    /// without an environment), with the tokens the bucket holds now (refilled as 0020 refills it)
    /// and the events the limiter gave back and that still wait (pending, last_error_class
    /// 'rate_limit').
    static func rateLimits(_ session: PGSession) async throws -> [RateLimit] {
        try await session.query(
            """
            SELECT m.merchant_id, m.rate_limit_per_second AS per_second, flexcharge.rate_limit_burst(m.rate_limit_per_second) AS burst,
                   b.environment,
                   least(flexcharge.rate_limit_burst(m.rate_limit_per_second)::double precision,
                         b.tokens + m.rate_limit_per_second * greatest(0, extract(epoch FROM clock_timestamp() - b.refreshed_at)::double precision))
                       AS tokens,
                   (SELECT count(*) FROM flexcharge.outbox o
                     WHERE o.state = 'pending' AND o.merchant_id = m.merchant_id AND o.last_error_class = 'rate_limit'
                       AND (b.environment IS NULL OR o.environment = b.environment))::bigint AS held
              FROM flexcharge.merchants m
              LEFT JOIN flexcharge.rate_buckets b ON b.merchant_id = m.merchant_id
             WHERE m.rate_limit_per_second IS NOT NULL
             ORDER BY m.merchant_id, b.environment NULLS FIRST
            """).rows.map {
            RateLimit(merchantID: try $0.decode("merchant_id"), perSecond: try $0.decode("per_second"), burst: try $0.decode("burst"),
                      environment: try $0.decode("environment"), tokens: try $0.decode("tokens"), held: try $0.decode("held"))
        }
    }
}
