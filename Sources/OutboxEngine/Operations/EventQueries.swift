import Foundation
import LibPQ

/// What an operator may look events up by: the one home of the states, kinds and decisions the CLI
/// (`events list`) and the ops console accept, and of the search's bounds.
public struct EventFilter: Sendable, Equatable {
    /// `outbox.state` values (migrations/0003, constraint `outbox_state_valid`).
    public static let states = ["pending", "running", "succeeded", "awaiting_outcome", "failed", "skipped", "dead"]
    /// `outbox.kind` values (migrations/0009, constraint `outbox_kind_valid`).
    public static let kinds = ClaimedEvent.Kind.allCases.map(\.rawValue)
    /// `outbox.decision` values (``Decision``).
    public static let decisions = Decision.allCases.map(\.rawValue)
    /// The most events one search returns (a page).
    public static let maximumLimit = 500

    public var merchant: String?
    public var order: String?
    public var state: String?
    public var kind: String?
    public var decision: String?
    /// Created at or after.
    public var since: Date?
    /// Created before.
    public var until: Date?
    /// Only ids below this one (the next page of a newest-first list).
    public var beforeID: Int64?
    public var limit: Int

    public init(merchant: String? = nil, order: String? = nil, state: String? = nil, kind: String? = nil,
                decision: String? = nil, since: Date? = nil, until: Date? = nil, beforeID: Int64? = nil, limit: Int = 100) {
        self.merchant = merchant
        self.order = order
        self.state = state
        self.kind = kind
        self.decision = decision
        self.since = since
        self.until = until
        self.beforeID = beforeID
        self.limit = limit
    }

    /// The first problem of this filter, said for an operator (`state must be one of ...`), or nil.
    public var problem: String? {
        if let state, !Self.states.contains(state) { return "state must be one of \(Self.states.joined(separator: ", "))" }
        if let kind, !Self.kinds.contains(kind) { return "kind must be one of \(Self.kinds.joined(separator: ", "))" }
        if let decision, !Self.decisions.contains(decision) {
            return "decision must be one of \(Self.decisions.joined(separator: ", "))"
        }
        if limit < 1 || limit > Self.maximumLimit { return "limit must be from 1 to \(Self.maximumLimit)" }
        if let since, let until, since >= until { return "the start of the time range must be before its end" }
        return nil
    }
}

/// Reads events for an operator (the CLI's `events`, the ops console): a newest-first search and
/// one event's history. Never the raw payload (the operator role cannot read it, migrations/0012);
/// ``maskedPayload(_:)`` gives its masked form (migrations/0024).
public struct EventQueries: Sendable {
    public let session: PGSession

    public init(session: PGSession) {
        self.session = session
    }

    /// The columns of a ``search(_:)`` row, in order.
    public static let searchColumns = [
        "id", "created_at", "merchant_id", "order_id", "kind", "channel", "origin", "state", "decision", "attempts", "last_error",
    ]

    /// Events matching `filter`, newest first, at most `filter.limit` (columns ``searchColumns``).
    /// Refuses a filter with a ``EventFilter/problem``. Unset filters fold away when PostgreSQL plans
    /// the statement with its values (libpq's unnamed statements are planned per call), so each search
    /// uses the index its filters allow: `outbox_by_order` (merchant, order), the primary key
    /// backwards (newest first), `outbox_unfinished` (state). Two shapes need help (EXPLAIN ANALYZE
    /// on a million events):
    ///   * an order without a merchant: `outbox_by_order` leads with the merchant, so the merchants
    ///     are enumerated first (a loose index scan, one probe per merchant: 334 ms -> 7 ms);
    ///   * a time window that ended long ago: walking the primary key back from the newest event
    ///     filters everything newer; when the window is shorter than the time since it ended, the
    ///     rows are found through the BRIN index on created_at (`outbox_by_day`, migrations/0031) and
    ///     sorted instead (1.5 s -> 0.17 s for one day, 20 days ago).
    public func search(_ filter: EventFilter) async throws -> PGResult {
        if let problem = filter.problem { throw OperatorError(problem) }
        let byOrderAlone = filter.order != nil && filter.merchant == nil
        let oldWindow = filter.until.map { until in
            until.timeIntervalSince(filter.since ?? .distantPast) < Date().timeIntervalSince(until)
        } ?? false
        let merchants = byOrderAlone
            ? """
              WITH RECURSIVE merchants AS (
                  (SELECT merchant_id FROM flexcharge.outbox ORDER BY merchant_id LIMIT 1)
                  UNION ALL
                  SELECT (SELECT o.merchant_id FROM flexcharge.outbox o WHERE o.merchant_id > m.merchant_id ORDER BY o.merchant_id LIMIT 1)
                    FROM merchants m WHERE m.merchant_id IS NOT NULL)

              """
            : ""
        return try await session.query(
            """
            \(merchants)SELECT \(Self.searchColumns.joined(separator: ", "))
              FROM flexcharge.outbox
             WHERE \(byOrderAlone ? "$1::text IS NULL AND merchant_id IN (SELECT merchant_id FROM merchants)" : "($1::text IS NULL OR merchant_id = $1)")
               AND ($2::text IS NULL OR order_id = $2)
               AND ($3::text IS NULL OR state = $3) AND ($4::text IS NULL OR kind = $4)
               AND ($5::text IS NULL OR decision = $5)
               AND ($6::timestamptz IS NULL OR created_at >= $6) AND ($7::timestamptz IS NULL OR created_at < $7)
               AND ($8::bigint IS NULL OR id < $8)
             ORDER BY \(oldWindow ? "id + 0" : "id") DESC LIMIT $9
            """,
            [filter.merchant, filter.order, filter.state, filter.kind, filter.decision, filter.since, filter.until,
             filter.beforeID, filter.limit])
    }

    /// One event as `flexcharge.order_events` shows it (no payload), or nil when unknown.
    public func event(_ id: Int64) async throws -> PGRow? {
        try await session.query("SELECT * FROM flexcharge.order_events WHERE id = $1", [id]).first
    }

    /// The columns of an ``attempts(_:)`` row, in order.
    public static let attemptColumns = [
        "attempt", "action", "worker", "environment", "started_at", "latency_ms", "http_status", "failure_class", "error",
    ]

    /// Every attempt of an event, oldest first: the worker's calls, expired leases and the operators'
    /// retries and skips (with their reasons in `error`).
    public func attempts(_ id: Int64) async throws -> PGResult {
        try await session.query(
            "SELECT \(Self.attemptColumns.joined(separator: ", ")) FROM flexcharge.attempts WHERE event_id = $1 ORDER BY id", [id])
    }

    /// What FlexCharge said about the event after its first answer: webhooks received (each once,
    /// redeliveries counted) and lookups that found a final state, oldest first (the view
    /// `order_outcomes`, which the operator role may read).
    public func outcomes(_ id: Int64) async throws -> PGResult {
        try await session.query(
            """
            SELECT received_at, source, fc_event, decision, fc_order_id, environment, deliveries
              FROM flexcharge.order_outcomes WHERE event_id = $1 ORDER BY id
            """, [id])
    }

    /// The event's payload with card fields, card numbers and credentials masked, as indented JSON
    /// text (`flexcharge.masked_payload`, migrations/0024); nil when the event is unknown.
    public func maskedPayload(_ id: Int64) async throws -> String? {
        try await session.query("SELECT jsonb_pretty(flexcharge.masked_payload($1)) AS payload", [id]).first?
            .decode("payload", as: String?.self)
    }
}
