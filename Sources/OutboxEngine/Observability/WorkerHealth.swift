import Synchronization

/// What `/readyz` reports: ready while the worker runs, has reached the database, and is not
/// draining.
public final class WorkerHealth: Sendable {
    private let state = Mutex((running: false, database: true))

    public init() {}

    public var isReady: Bool { state.withLock { $0.running && $0.database } }

    func setReady(_ running: Bool) { state.withLock { $0.running = running } }
    func databaseReachable(_ reachable: Bool) { state.withLock { $0.database = reachable } }
}
