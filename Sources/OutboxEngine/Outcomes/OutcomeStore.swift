import Foundation
import LibPQ

/// An evaluate awaiting its outcome whose lookup is due, claimed by one worker.
struct DueOutcome: Sendable {
    let eventID: Int64
    let merchantID: String
    let environment: String
    let orderSessionKey: String
    /// Lookups made before this one.
    let polls: Int
    /// When the evaluate got its first (non-final) answer.
    let answeredAt: Date
    /// `payload.expiryDateUtc`, when the gateway gave one (MIT).
    let payloadExpiry: Date?
    /// The decision recorded so far (CHALLENGE, SUBMITTED, CAPTUREREQUIRED), `nil` when none is understood.
    let decision: Decision?
    let credentials: SealedCredentials?
}

/// What one lookup found, to be written with its attempt-ledger row.
struct OutcomeLookup: Sendable {
    enum Result: Sendable, Equatable {
        /// The order is final: state `succeeded` with this decision.
        case final(decision: String)
        /// Still being worked: look again after `delay` (a known interim decision is kept).
        case pending(decision: String?, delay: Duration)
        /// Given up (past expiry, or too old): state `dead`.
        case dead
    }

    var eventID: Int64
    var result: Result
    var httpStatus: Int?
    var failureClass: String?
    var error: String?
    var startedAt: Date
    var finishedAt: Date
}

/// Statements of the outcome poller and the webhook receiver.
struct OutcomeStore: Sendable {
    init() {}

    /// Claims up to `limit` due lookups: awaiting events whose `next_attempt_at` has come (and, for
    /// the first lookup, answered at least `firstDelay` ago). Claiming pushes `next_attempt_at` by
    /// `lease`, so no other worker looks the same order up meanwhile; the state stays
    /// `awaiting_outcome` (the reports keep counting it as pending).
    func claimDue(on session: PGSession, limit: Int, firstDelay: Duration, lease: Duration) async throws -> [DueOutcome] {
        let result = try await session.query(
            """
            WITH due AS (
                SELECT id FROM flexcharge.outbox
                 WHERE state = 'awaiting_outcome' AND next_attempt_at <= now() AND order_session_key IS NOT NULL
                   AND environment IS NOT NULL
                   AND (outcome_polls > 0 OR completed_at IS NULL OR completed_at <= now() - make_interval(secs => $2::float8))
                 ORDER BY next_attempt_at, id
                 LIMIT $1
                   FOR UPDATE SKIP LOCKED
            ),
            claimed AS (
                UPDATE flexcharge.outbox o
                   SET next_attempt_at = now() + make_interval(secs => $3::float8)
                  FROM due WHERE o.id = due.id
                RETURNING o.id, o.merchant_id, o.environment, o.order_session_key, o.outcome_polls,
                          coalesce(o.completed_at, o.updated_at) AS answered_at, o.payload ->> 'expiryDateUtc' AS expiry,
                          o.decision
            )
            SELECT c.*, mc.mid, mc.key_id, mc.app_key_sealed, mc.app_secret_sealed,
                   mc.updated_at AS credentials_updated_at
              FROM claimed c
              LEFT JOIN flexcharge.merchant_credentials mc
                     ON mc.merchant_id = c.merchant_id AND mc.environment = c.environment
            """,
            [limit, firstDelay.seconds, lease.seconds])
        return try result.rows.map { row in
            DueOutcome(
                eventID: try row.decode("id"), merchantID: try row.decode("merchant_id"),
                environment: try row.decode("environment"), orderSessionKey: try row.decode("order_session_key"),
                polls: try row.decode("outcome_polls"), answeredAt: try row.decode("answered_at"),
                payloadExpiry: OutcomeRules.date(try row.decode("expiry", as: String?.self)),
                decision: Decision(rawValue: try row.decode("decision", as: String?.self) ?? ""),
                credentials: try SealedCredentials(row: row))
        }
    }

    /// Writes one lookup: the event's new state (only while it still awaits its outcome: a webhook
    /// may have settled it meanwhile), its attempt-ledger row (`lookup`), and for a final answer an
    /// `outcome_events` row. Returns false when the event no longer awaited its outcome.
    @discardableResult
    func record(_ lookup: OutcomeLookup, worker: String, on session: PGSession) async throws -> Bool {
        let state: String, decision: String?, delay: Double
        switch lookup.result {
        case .final(let value): (state, decision, delay) = ("succeeded", value, 0)
        case .pending(let value, let wait): (state, decision, delay) = ("awaiting_outcome", value, wait.seconds)
        case .dead: (state, decision, delay) = ("dead", nil, 0)
        }
        let latency = lookup.finishedAt.timeIntervalSince(lookup.startedAt) * 1000
        let result = try await session.query(
            """
            WITH upd AS (
                UPDATE flexcharge.outbox o
                   SET state            = $2::text,
                       decision         = coalesce($3::text, o.decision),
                       outcome_polls    = o.outcome_polls + 1,
                       next_attempt_at  = CASE WHEN $2::text = 'awaiting_outcome'
                                               THEN now() + make_interval(secs => $4::float8) ELSE now() END,
                       last_http_status = $5::integer,
                       last_error_class = $6::text,
                       last_error       = $7::text,
                       completed_at     = CASE WHEN $2::text = 'awaiting_outcome' THEN o.completed_at ELSE now() END,
                       updated_at       = now()
                 WHERE o.id = $1 AND o.state = 'awaiting_outcome'
                RETURNING o.id, o.attempts, o.merchant_id, o.environment, o.order_session_key, o.order_id
            ),
            ledger AS (
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at,
                                                 finished_at, latency_ms, http_status, failure_class, error)
                SELECT id, attempts, 'lookup', $8, environment, $9, $10, $11, $5::integer, $6::text, $7::text FROM upd
                RETURNING 1
            ),
            outcome AS (
                INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id,
                                                       external_order_id, decision)
                SELECT 'lookup', merchant_id, environment, id, 'lookup', order_session_key, order_id, $3::text
                  FROM upd WHERE $2::text = 'succeeded'
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM upd) AS updated
            """,
            [lookup.eventID, state, decision, delay, lookup.httpStatus, lookup.failureClass, lookup.error, worker,
             lookup.startedAt, lookup.finishedAt, latency])
        return try result.first?.decode("updated", as: Int64.self) == 1
    }
}

