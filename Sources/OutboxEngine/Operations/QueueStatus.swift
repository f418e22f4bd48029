import Foundation
import LibPQ

/// Queue health at a glance, and the alerts it raises: what `flexcharge-outbox status` prints and
/// the console's queue page draws, read once here so both say the same.
///
/// Sources: the views `queue_health` and `worker_leases` (migrations/0006, 0014), `breakers`
/// (0013), the active pauses (``PauseBoard``, 0019) and the outbox's count per state.
public struct QueueStatus: Codable, Sendable {
    /// Events of one lane in one unfinished (or dead) state.
    public struct Lane: Codable, Sendable {
        public let lane: String, state: String, events: Int, oldestAgeSeconds: Double?, retrying: Int, awaitingLookup: Int
    }
    /// Leases one worker holds now; expired ones mean it stopped answering.
    public struct Lease: Codable, Sendable { public let worker: String, leases: Int, expired: Int }
    /// A circuit breaker that is not closed (or is counting failures), from `flexcharge.breakers`.
    public struct Breaker: Codable, Sendable {
        public let merchantId: String, environment: String, state: String, failures: Int, trips: Int
        public let openedAt: Date?, retryAt: Date?, pendingEvents: Int, lastError: String?
    }
    /// When `status` (and the console) call the queue unhealthy.
    public struct Thresholds: Sendable {
        public var oldestPendingSeconds: Double
        public var dead: Int
        public init(oldestPendingSeconds: Double = 300, dead: Int = 0) {
            self.oldestPendingSeconds = oldestPendingSeconds
            self.dead = dead
        }
    }

    public static let states = ["pending", "running", "awaiting_outcome", "succeeded", "failed", "skipped", "dead"]
    public static let breakerStates = ["closed", "open", "half_open"]

    public let lanes: [Lane], leases: [Lease], breakers: [Breaker], breakerCounts: [String: Int], pauses: [Pause]
    public let totals: [String: Int], alerts: [String]

    /// Reads the queue now.
    public static func read(_ session: PGSession, thresholds: Thresholds = Thresholds()) async throws -> QueueStatus {
        let lanes = try await session.query(
            "SELECT lane_name, state, events, oldest_age_seconds, retrying, awaiting_lookup FROM flexcharge.queue_health ORDER BY lane, state"
        ).rows.map {
            Lane(lane: try $0.decode("lane_name"), state: try $0.decode("state"), events: try $0.decode("events"),
                 oldestAgeSeconds: try $0.decode("oldest_age_seconds"), retrying: try $0.decode("retrying"),
                 awaitingLookup: try $0.decode("awaiting_lookup"))
        }
        let leases = try await session.query("SELECT worker, leases, expired FROM flexcharge.worker_leases ORDER BY worker").rows.map {
            Lease(worker: try $0.decode("worker"), leases: try $0.decode("leases"), expired: try $0.decode("expired"))
        }
        let breakerRows = try await session.query(
            """
            SELECT merchant_id, environment, state, failures, trips, opened_at, retry_at, pending_events, last_error
              FROM flexcharge.breakers ORDER BY merchant_id, environment
            """).rows
        var breakerCounts = Dictionary(uniqueKeysWithValues: breakerStates.map { ($0, 0) })
        var breakers: [Breaker] = []
        for row in breakerRows {
            let state: String = try row.decode("state")
            breakerCounts[state, default: 0] += 1
            let failures: Int = try row.decode("failures")
            guard state != "closed" || failures > 0 else { continue }
            breakers.append(Breaker(
                merchantId: try row.decode("merchant_id"), environment: try row.decode("environment"), state: state,
                failures: failures, trips: try row.decode("trips"), openedAt: try row.decode("opened_at"),
                retryAt: try row.decode("retry_at"), pendingEvents: try row.decode("pending_events"),
                lastError: try row.decode("last_error")))
        }
        let pauses = try await PauseBoard(session: session, actor: "").active()
        var totals: [String: Int] = [:]
        for row in try await session.query("SELECT state, count(*)::bigint AS n FROM flexcharge.outbox GROUP BY state").rows {
            totals[try row.decode("state")] = try row.decode("n")
        }
        var alerts: [String] = []
        if let oldest = lanes.filter({ $0.state == "pending" }).compactMap(\.oldestAgeSeconds).max(), oldest > thresholds.oldestPendingSeconds {
            alerts.append("oldest pending event is \(Int(oldest)) s old (threshold \(Int(thresholds.oldestPendingSeconds)) s)")
        }
        if let dead = totals["dead"], dead > thresholds.dead { alerts.append("\(dead) dead event(s) (threshold \(thresholds.dead))") }
        let expired = leases.map(\.expired).reduce(0, +)
        if expired > 0 { alerts.append("\(expired) expired lease(s): a worker stopped answering") }
        for breaker in breakers where breaker.state != "closed" {
            alerts.append("circuit breaker \(breaker.state) for merchant \(breaker.merchantId) (\(breaker.environment)): FlexCharge is failing; \(breaker.pendingEvents) event(s) wait without spending attempts")
        }
        return QueueStatus(lanes: lanes, leases: leases, breakers: breakers, breakerCounts: breakerCounts, pauses: pauses,
                           totals: totals, alerts: alerts)
    }
}
