import Synchronization

/// What `/readyz` reports: ready while the worker runs, is not draining, and its database probe
/// (``DatabaseProbe``: `SELECT 1` every ``probeInterval`` on a connection of its own, given up after
/// ``probeTimeout``) last got an answer. A stopped or unreachable database turns it unready within
/// about three seconds, and within ``DatabaseProbe/deadline`` when the probe was connecting; the first
/// answer turns it ready again.
public final class WorkerHealth: Sendable {
    /// How often the worker probes the database.
    public static let probeInterval: Duration = .seconds(1)
    /// How long a probe's statement may wait for its answer (a probe still connecting is reported
    /// at ``DatabaseProbe/deadline``).
    public static let probeTimeout: Duration = .seconds(2)

    private let state = Mutex((running: false, database: DatabaseReadiness()))

    public init() {}

    public var isReady: Bool { state.withLock { $0.running && $0.database.reachable } }

    /// Why the worker is not ready (nil when it is), for the `/readyz` body: never secrets, only
    /// the database error's message.
    public var notReadyReason: String? {
        state.withLock { state in
            if !state.running { return "the worker is not running (starting or draining)" }
            if !state.database.reachable {
                return "the database is not answering: \(state.database.lastFailure ?? "probe failed")"
            }
            return nil
        }
    }

    func setReady(_ running: Bool) { state.withLock { $0.running = running } }

    /// Records a probe's result; returns the change of readiness to log, if any.
    func databaseAnswered(now: ContinuousClock.Instant = .now) -> DatabaseReadiness.Transition? {
        state.withLock { $0.database.probeSucceeded(now: now) }
    }

    func databaseFailed(_ reason: String, now: ContinuousClock.Instant = .now) -> DatabaseReadiness.Transition? {
        state.withLock { $0.database.probeFailed(reason: reason, now: now) }
    }
}

/// The database half of readiness, as a small state machine so that each change is reported once
/// (one log line when the database stops answering, one when it answers again; nothing per probe).
/// Pure: `DatabaseReadinessTests` drive it without a database.
struct DatabaseReadiness: Sendable, Equatable {
    enum Transition: Equatable {
        /// The first failed probe after answers (or at start).
        case becameUnreachable(reason: String)
        /// The first answer after failures; `after` is how long it was unreachable.
        case becameReachable(after: Duration)
    }

    /// The worker connected at start, so the database counts as reachable until a probe fails.
    private(set) var reachable = true
    private(set) var failingSince: ContinuousClock.Instant?
    private(set) var lastFailure: String?
    /// Failed probes in a row.
    private(set) var failures = 0

    mutating func probeSucceeded(now: ContinuousClock.Instant) -> Transition? {
        failures = 0
        guard !reachable else { return nil }
        reachable = true
        defer { failingSince = nil; lastFailure = nil }
        return .becameReachable(after: failingSince.map { now - $0 } ?? .zero)
    }

    mutating func probeFailed(reason: String, now: ContinuousClock.Instant) -> Transition? {
        failures += 1
        lastFailure = reason
        guard reachable else { return nil }
        reachable = false
        failingSince = now
        return .becameUnreachable(reason: reason)
    }
}
