import Foundation
import LibPQ

/// Every statement the worker runs against the outbox. Each method is one round trip and one
/// transaction.
struct OutboxStore: Sendable {
    init() {}

    /// Claims up to `total` events (see `flexcharge.claim()`, latest in migrations/0033_claim_fewer_steps.sql,
    /// rules as in 0019_pause.sql, first in 0005_claim.sql: SKIP LOCKED, lanes, merchant fairness,
    /// per-order order, pauses, breakers, routing; and `flexcharge.claim_for_worker()` around it, latest in
    /// 0033, first in 0021_claim_cost.sql). The lease is committed when this returns, before any HTTP call.
    ///
    /// The request body of every kind is built here, by the server, by `flexcharge.request_body_text()`
    /// (migrations/0030_request_body_text.sql and 0033; rules and why it is in SQL: 0015_what_is_sent.sql): the
    /// worker sends it unchanged. A follow-up's FlexCharge order id is resolved here too (its order's
    /// evaluate's, filled in by claim(), else the payload's `orderSessionKey`).
    func claim(
        on session: PGSession, worker: String, total: Int, laneCaps: [Int], lease: Duration
    ) async throws -> [ClaimedEvent] {
        // flexcharge.claim_for_worker() (migrations/0021_claim_cost.sql, 0030, 0033) is the claim statement: a
        // function, so PostgreSQL plans it once per connection.
        let result = try await session.query(
            "SELECT * FROM flexcharge.claim_for_worker($1, $2, $3::integer[], $4)",
            [worker, total, laneCaps, lease.seconds])
        let columns = try ClaimedEvent.Columns(result)
        return try result.rows.map { try ClaimedEvent(row: $0, columns: columns) }
    }

    /// Writes a batch of completions in one statement (so one transaction): each event's new
    /// state and its attempt-ledger row. Returns the ids whose outcome is in place.
    ///
    /// An outcome is written only for the attempt it belongs to (`attempts` still equals the
    /// completion's attempt) and only while no other worker can have taken the event over: it is
    /// still `running` under this worker's lease, or its lease expired and the rescue returned it to
    /// `pending` but nobody has claimed it since (the rescue holds it back a few seconds for exactly
    /// this, see migrations/0010). Otherwise the event keeps its state and only the attempt is
    /// recorded. Idempotent: a batch that was committed but whose answer was lost (the database
    /// stopped) and is sent again inserts no second ledger row, and its ids count as written.
    @discardableResult
    ///
    /// - Parameter retrying: the batch was sent before without an answer (it may be committed): only
    ///   then are the ledger rows looked for first, so the common path pays no extra probe.
    func record(
        _ completions: [Completion], worker: String, on session: PGSession, retrying: Bool = false,
        timeout: Duration? = nil
    ) async throws -> Set<Int64> {
        guard !completions.isEmpty else { return [] }
        var ids: [Int64] = [], attempts: [Int] = [], actions: [String] = [], environments: [String] = []
        var started: [Date] = [], finished: [Date] = [], latencies: [Double] = [], statuses: [Int?] = []
        var classes: [String?] = [], errors: [String?] = [], states: [String] = [], nextActions: [String] = []
        var retryAt: [Date?] = [], transactionKeys: [String?] = [], sessionKeys: [String?] = []
        var decisions: [String?] = [], fieldErrors: [String?] = []
        for c in completions {
            ids.append(c.eventID)
            attempts.append(c.attempt)
            actions.append(c.action.rawValue)
            environments.append(c.environment)
            started.append(c.startedAt)
            finished.append(c.finishedAt)
            latencies.append(c.latencyMilliseconds)
            statuses.append(c.httpStatus)
            classes.append(c.failureClass)
            errors.append(c.error)
            states.append(c.outcome.state)
            if case .retry(let at, let action) = c.outcome {
                retryAt.append(at)
                nextActions.append(action.rawValue)
            } else {
                retryAt.append(nil)
                nextActions.append(c.action.rawValue)
            }
            transactionKeys.append(c.transactionKey)
            sessionKeys.append(c.orderSessionKey)
            decisions.append(c.decision)
            fieldErrors.append(c.fieldErrors)
        }
        // The statement is flexcharge.record_outcomes() (migrations/0021_claim_cost.sql, 0034), planned once per
        // connection; its rules are the ones above. The arrays go in the binary format with their types
        // (PGBinaryArray): as text the server parsed each literal element by element (array_in and each
        // element's input function). Measured (callgrind of the writing backend, bench-sql's 0 ms drain of
        // 3 000 ~1 KB transmits, two runs each): 209.2 k / 209.7 k -> 197.0 k / 198.5 k instructions per
        // event (array input 15.5 k -> array_recv 5.7 k); the worker's own encoding 8.7 k -> 3.7 k
        // (scripts/callgrind-worker: 123 691 -> 119 964 per event).
        let result = try await session.query(
            """
            SELECT r.id FROM flexcharge.record_outcomes($1, $2::bigint[], $3::integer[], $4::text[], $5::text[],
                $6::timestamptz[], $7::timestamptz[], $8::float8[], $9::integer[], $10::text[], $11::text[], $12::text[],
                $13::text[], $14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::jsonb[], $19::boolean) AS r(id)
            """,
            [worker, PGBinaryArray(int8: ids), PGBinaryArray(int4: attempts), PGBinaryArray(text: actions),
             PGBinaryArray(text: environments), PGBinaryArray(timestamptz: started),
             PGBinaryArray(timestamptz: finished), PGBinaryArray(float8: latencies),
             Self.nilIfAllNil(statuses, PGBinaryArray.init(int4:)), Self.nilIfAllNil(classes, PGBinaryArray.init(text:)),
             Self.nilIfAllNil(errors, PGBinaryArray.init(text:)), PGBinaryArray(text: states),
             PGBinaryArray(text: nextActions), Self.nilIfAllNil(retryAt, PGBinaryArray.init(timestamptz:)),
             Self.nilIfAllNil(transactionKeys, PGBinaryArray.init(text:)),
             Self.nilIfAllNil(sessionKeys, PGBinaryArray.init(text:)),
             Self.nilIfAllNil(decisions, PGBinaryArray.init(text:)),
             Self.nilIfAllNil(fieldErrors, PGBinaryArray.init(jsonb:)), retrying],
            timeout: timeout)
        return Set(try result.rows.map { try $0.decode("id", as: Int64.self) })
    }

    /// An optional field that is NULL for every completion of a batch (a success has no error, a
    /// transmit no decision) is sent as one NULL instead of an array of NULLs: record_outcomes()'s
    /// unnest() reads a NULL array as NULL for every row, and the server reads one value, not one per
    /// completion.
    private static func nilIfAllNil<T>(_ values: [T?], _ array: ([T?]) -> PGBinaryArray) -> PGBinaryArray? {
        values.contains { $0 != nil } ? array(values) : nil
    }

    /// Extends the leases of events still being worked on (long calls), so no other worker
    /// reclaims them. Returns the ids whose lease this worker still held.
    func renewLeases(_ ids: [Int64], worker: String, lease: Duration, on session: PGSession) async throws -> Set<Int64> {
        guard !ids.isEmpty else { return [] }
        let result = try await session.query(
            """
            UPDATE flexcharge.outbox SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
             WHERE id = ANY($1::bigint[]) AND state = 'running' AND lease_owner = $2
            RETURNING id
            """,
            [ids, worker, lease.seconds])
        return Set(try result.rows.map { try $0.decode("id", as: Int64.self) })
    }

    /// Gives back events claimed but never started (shutdown): pending again at once, the claim
    /// not counted as an attempt (and an event never called leaves no `first_claimed_at`: nothing
    /// was sent, so FlexCharge's idempotency window has not started). Only rows this worker still
    /// leases are touched.
    func release(_ ids: [Int64], worker: String, on session: PGSession, timeout: Duration? = nil) async throws {
        guard !ids.isEmpty else { return }
        try await session.execute(
            """
            UPDATE flexcharge.outbox
               SET state = 'pending', attempts = greatest(attempts - 1, 0), lease_owner = NULL,
                   -- Only an event that was never called (no call, and no lease that expired mid-call, in
                   -- its ledger) leaves FlexCharge's idempotency window unstarted (an operator's retry
                   -- resets attempts, so they cannot tell).
                   first_claimed_at = CASE WHEN NOT EXISTS (
                                          SELECT 1 FROM flexcharge.attempts a
                                           WHERE a.event_id = flexcharge.outbox.id
                                             AND a.action IN ('send', 'lookup', 'lease_expired'))
                                      THEN NULL ELSE first_claimed_at END,
                   lease_expires_at = NULL, next_attempt_at = now(), updated_at = now()
             WHERE id = ANY($1::bigint[]) AND state = 'running' AND lease_owner = $2
            """,
            [ids, worker], timeout: timeout)
    }

    /// Returns expired leases to pending (see `flexcharge.rescue_expired_leases()`), holding each
    /// rescued event back for `hold` so that the worker whose lease expired can still write an
    /// outcome it has (migrations/0010, 0036).
    /// The kinds it sends to a lookup first are ``ClaimedEvent/Kind/isLookedUpAfterAmbiguity``'s; the
    /// call may have reached FlexCharge, so they are given up at `policy`'s lookup limit, the others at
    /// its attempt limit.
    @discardableResult
    func rescueExpiredLeases(policy: RetryPolicy, hold: Duration = .zero, on session: PGSession) async throws -> Int {
        let rows = try await session.query(
            "SELECT flexcharge.rescue_expired_leases($1, make_interval(secs => $2), $3::text[], $4) AS n",
            [policy.maxAttempts, hold.seconds, Self.lookedUpKinds, policy.lookupLimit]).rows
        guard let row = rows.first else { return 0 }
        return try row.decode("n")
    }

    /// One lane's figures for the queue gauges.
    struct LaneDepth: Sendable {
        var lane: String
        /// Pending events and the age of the oldest.
        var depth: Int
        var oldestAgeSeconds: Double
        /// Evaluates awaiting their outcome, and dead events, in the whole queue.
        var awaitingOutcome: Int
        var dead: Int
    }

    /// Queue depth and oldest pending age per lane, and the events awaiting their outcome and dead,
    /// for metrics: every lane, 0 when it has none (a lane left out would keep its last gauge values,
    /// and an alert on them would not clear). One statement on queue_health, whatever the traffic.
    func laneDepths(on session: PGSession) async throws -> [LaneDepth] {
        let result = try await session.query(
            """
            SELECT l.name AS lane_name,
                   coalesce(sum(q.events) FILTER (WHERE q.state = 'pending'), 0)::bigint AS depth,
                   coalesce(max(q.oldest_age_seconds) FILTER (WHERE q.state = 'pending'), 0) AS oldest,
                   coalesce(sum(q.events) FILTER (WHERE q.state = 'awaiting_outcome'), 0)::bigint AS awaiting,
                   coalesce(sum(q.events) FILTER (WHERE q.state = 'dead'), 0)::bigint AS dead
              FROM flexcharge.lanes l
              LEFT JOIN flexcharge.queue_health q ON q.lane_name = l.name
             GROUP BY l.name
            """)
        return try result.rows.map {
            LaneDepth(lane: try $0.decode("lane_name"), depth: try $0.decode("depth"), oldestAgeSeconds: try $0.decode("oldest"),
                      awaitingOutcome: try $0.decode("awaiting"), dead: try $0.decode("dead"))
        }
    }

    /// The kinds looked up before anything is sent again after a call that may have reached FlexCharge.
    static let lookedUpKinds = ClaimedEvent.Kind.allCases.filter(\.isLookedUpAfterAmbiguity).map(\.rawValue)
}
