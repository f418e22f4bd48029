import Foundation
import LibPQ

/// What an operator does to events by hand: requeue or skip them. Each action is written to the
/// attempt ledger (action `operator_retry` / `operator_skip`, worker = the operator) in the same
/// transaction, so an event's history shows who did what.
public struct OperatorActions: Sendable {
    public let session: PGSession
    public let actor: String
    /// The worker's retry rules; `retry` asks its idempotency window (an evaluate past it is
    /// requeued as a lookup only). Give it the workers' policy.
    public let retryPolicy: RetryPolicy

    /// The states `retry` requeues from.
    public static let retryableStates = ["failed", "dead"]
    /// The states `skip` skips from.
    public static let skippableStates = ["pending", "failed", "dead"]

    public init(session: PGSession, actor: String, retryPolicy: RetryPolicy = RetryPolicy()) {
        self.session = session
        self.actor = actor
        self.retryPolicy = retryPolicy
    }

    /// Requeues one failed or dead event with its own idempotency key. Any event but a transmit that
    /// may have reached FlexCharge (it was claimed before) is looked up first, so a refund, cancel or
    /// capture that was applied is not applied again. An evaluate first sent more than the
    /// idempotency window ago (e.g. dead after a long FlexCharge outage) is requeued as a lookup
    /// only: the worker finds its order at FlexCharge and records its decision, and if FlexCharge
    /// has no such order it goes dead again with that reason; it is never sent again (its
    /// `first_claimed_at` is kept, which is what the worker's window check reads).
    /// `reason`, when given (the ops console asks for one), is kept with the requeue in the attempt ledger.
    public func retry(_ id: Int64, reason: String? = nil) async throws -> String {
        try await requeue(id, from: Self.retryableStates, refusal: "only failed or dead events can be retried", verb: "requeued",
                          reason: reason)
    }

    /// The one requeue rule (lookup first, never past the idempotency window) for `retry` and
    /// `replaySkipped`: requeues the event if its state is one of `states`, else refuses.
    func requeue(_ id: Int64, from states: [String], refusal: String, verb: String, reason: String? = nil) async throws -> String {
        let actor = self.actor, policy = retryPolicy
        return try await session.withTransaction { tx in
            guard let row = try tx.query(
                "SELECT state, kind, first_claimed_at, now() AS now FROM flexcharge.outbox WHERE id = $1 FOR UPDATE",
                [id]).first
            else { throw OperatorError("unknown event \(id)") }
            let state: String = try row.decode("state")
            guard states.contains(state) else {
                throw OperatorError("event \(id) is \(state): \(refusal)")
            }
            let kind: String = try row.decode("kind")
            let firstSent = try row.decode("first_claimed_at", as: Date?.self)
            let sent = firstSent != nil
            let now: Date = try row.decode("now")
            let pastWindow = kind == ClaimedEvent.Kind.evaluate.rawValue
                && firstSent.map { policy.idempotencyWindowHasPassed(firstSentAt: $0, now: now) } == true
            let lookedUp = ClaimedEvent.Kind(rawValue: kind)?.isLookedUpAfterAmbiguity ?? true
            let action = lookedUp && sent ? "lookup" : "send"
            let rule = pastWindow
                ? "\(verb) as a lookup only: first sent more than \(Self.hours(policy.idempotencyWindow)) h ago, past FlexCharge's idempotency window, so it is never sent again; if FlexCharge has no order for it, it goes dead again"
                : "\(verb) (\(action) first)"
            let note = reason.map { "\(rule); reason: \($0)" } ?? rule
            try tx.execute(
                """
                UPDATE flexcharge.outbox
                   SET state = 'pending', next_action = $2, attempts = 0, next_attempt_at = now(), completed_at = NULL,
                       last_error = 'requeued by ' || $3, last_error_class = NULL, updated_at = now()
                 WHERE id = $1
                """, [id, action, actor])
            try Self.record(tx, id: id, action: "operator_retry", actor: actor, note: note)
            return action
        }
    }

    /// Requeues every dead event (optionally of one merchant, dead since a time) that can be
    /// retried; returns the ids requeued and the ids refused with the reason.
    public func retryDead(merchant: String?, since: Date?) async throws -> (requeued: [Int64], refused: [(Int64, String)]) {
        let ids: [Int64] = try await session.query(
            """
            SELECT id FROM flexcharge.outbox
             WHERE state = 'dead' AND ($1::text IS NULL OR merchant_id = $1) AND ($2::timestamptz IS NULL OR completed_at >= $2)
             ORDER BY id
            """, [merchant, since]).rows.map { try $0.decode("id") }
        var requeued: [Int64] = [], refused: [(Int64, String)] = []
        for id in ids {
            do {
                _ = try await retry(id)
                requeued.append(id)
            } catch let error as OperatorError {
                refused.append((id, error.description))
            }
        }
        return (requeued, refused)
    }

    /// Marks an event skipped (never sent again) with the operator's reason, which must not be blank.
    public func skip(_ id: Int64, reason: String) async throws {
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw OperatorError("the reason must not be empty") }
        let actor = self.actor
        try await session.withTransaction { tx in
            guard let row = try tx.query("SELECT state FROM flexcharge.outbox WHERE id = $1 FOR UPDATE", [id]).first else {
                throw OperatorError("unknown event \(id)")
            }
            let state: String = try row.decode("state")
            guard Self.skippableStates.contains(state) else {
                throw OperatorError("event \(id) is \(state): only pending, failed or dead events can be skipped")
            }
            try tx.execute(
                """
                UPDATE flexcharge.outbox
                   SET state = 'skipped', last_error_class = 'operator', last_error = 'skipped by ' || $2 || ': ' || $3,
                       completed_at = now(), updated_at = now()
                 WHERE id = $1
                """, [id, actor, reason])
            try Self.record(tx, id: id, action: "operator_skip", actor: actor, note: reason)
        }
    }

    /// A window in hours for a note: `24`, `1.5`.
    private static func hours(_ window: Duration) -> String {
        let hours = window / .seconds(3600)
        return hours == hours.rounded() ? String(Int(hours)) : String(format: "%.1f", hours)
    }

    private static func record(_ tx: isolated PGSession, id: Int64, action: String, actor: String, note: String) throws {
        try tx.execute(
            """
            INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, started_at, finished_at, error)
            SELECT id, attempts, $2, $3, now(), now(), $4 FROM flexcharge.outbox WHERE id = $1
            """, [id, action, actor, note])
    }
}

/// An operator action that cannot be done; the message says why.
public struct OperatorError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
