import LibPQ
import Logging
import Metrics

/// What one pruning pass deleted, per table.
public struct PruneReport: Sendable, Equatable, CustomStringConvertible {
    public var orders = 0
    public var events = 0
    public var outcomeEvents = 0
    public var attempts = 0
    public var merchantAudit = 0
    public var webhookNonces = 0

    public init() {}

    public var description: String {
        "\(events) events of \(orders) orders, \(outcomeEvents) outcome events, \(attempts) attempts, "
            + "\(merchantAudit) audit rows, \(webhookNonces) webhook nonces"
    }
}

/// Deletes finished history by a ``RetentionPolicy`` through the SECURITY DEFINER functions of
/// migrations/0018_retention.sql (a worker login may call them; nobody gets DELETE on the tables).
/// One pruner at a time: a pass holds a session-level advisory lock, and a pruner that does not
/// get it skips the pass. Every statement is one small batch in its own transaction, so no lock
/// is held long and the gateway's inserts and the workers' claims go on meanwhile.
public struct Pruner: Sendable {
    let policy: RetentionPolicy
    private let logger: Logger

    /// The advisory lock key shared by every pruner (`worker` and `prune`) of one database.
    static let lockKey = "flexcharge.prune"

    public init(policy: RetentionPolicy, logger: Logger = Logger(label: "flexcharge.prune")) {
        self.policy = policy
        self.logger = logger
    }

    /// One pass over every table, or nil when another pruner holds the lock. The session is
    /// pinned meanwhile: a lost connection lost the lock too, so the pass fails rather than going
    /// on unlocked.
    public func pass(on session: PGSession) async throws -> PruneReport? {
        _ = try await session.pin(reason: "held the pruning advisory lock, which the lost connection released")
        do {
            let locked = try await session.query("SELECT pg_try_advisory_lock(hashtext($1)) AS locked", [Self.lockKey])
            guard try locked.first!.decode("locked", as: Bool.self) else {
                await session.unpin()
                return nil
            }
            let report: PruneReport
            do {
                report = try await prune(on: session)
            } catch {
                _ = try? await session.query("SELECT pg_advisory_unlock(hashtext($1))", [Self.lockKey])
                throw error
            }
            try await session.query("SELECT pg_advisory_unlock(hashtext($1))", [Self.lockKey])
            await session.unpin()
            return report
        } catch {
            await session.unpin()
            throw error
        }
    }

    private func prune(on session: PGSession) async throws -> PruneReport {
        var report = PruneReport()
        let batch = max(1, min(policy.batchSize, 5000))
        var after: Int64? = 0
        while let from = after, !Task.isCancelled {
            let row = try await session.query(
                """
                SELECT orders, events, outcomes, next_after_id
                  FROM flexcharge.prune_outbox($1, $2, make_interval(secs => $3), make_interval(secs => $4), make_interval(secs => $5))
                """,
                [from, batch, policy.completed.seconds, policy.failed.seconds, policy.rescued.seconds]).first!
            report.orders += try row.decode("orders", as: Int.self)
            report.events += try row.decode("events", as: Int.self)
            report.outcomeEvents += try row.decode("outcomes", as: Int.self)
            after = try row.decode("next_after_id", as: Int64?.self)
        }
        report.attempts = try await walk("attempts", policy.attempts, batch, on: session)
        report.outcomeEvents += try await walk("outcome_events", policy.failed, batch, on: session)
        report.merchantAudit = try await walk("merchant_audit", policy.audit, batch, on: session)
        while !Task.isCancelled {
            let deleted: Int = try await session.query(
                "SELECT flexcharge.prune_webhook_nonces($1, make_interval(secs => $2)) AS deleted",
                [batch, policy.webhookNonces.seconds]).first!.decode("deleted")
            report.webhookNonces += deleted
            if deleted < batch { break }
        }
        for (table, rows) in [("outbox", report.events), ("outcome_events", report.outcomeEvents), ("attempts", report.attempts),
                              ("merchant_audit", report.merchantAudit), ("webhook_nonces", report.webhookNonces)] where rows > 0 {
            Counter(label: "flexcharge_outbox_pruned_rows_total", dimensions: [("table", table)]).increment(by: rows)
        }
        return report
    }

    /// Walks one table by id with 0018's `prune_history` (which holds each table's rule).
    private func walk(_ table: String, _ retention: Duration, _ batch: Int, on session: PGSession) async throws -> Int {
        var deleted = 0
        var after: Int64? = 0
        while let from = after, !Task.isCancelled {
            let row = try await session.query(
                "SELECT deleted, next_after_id FROM flexcharge.prune_history($1, $2, $3, make_interval(secs => $4))",
                [table, from, batch, retention.seconds]).first!
            deleted += try row.decode("deleted", as: Int.self)
            after = try row.decode("next_after_id", as: Int64?.self)
        }
        return deleted
    }
}
