/// A small fixed-size pool of ``PGSession``s, each on its own thread: `flexcharge-outbox serve` answers every
/// request with a session from one (`--database-connections`), so one slow request does not hold up the others.
///
/// Sessions are opened lazily and reopen themselves after a server restart, so the pool never
/// has to replace an object: a leased session that hit a dead connection reconnects on its next
/// statement.
///
/// A caller that finds every session busy waits in line (first come, first served) for at most
/// `leaseTimeout`, then gets a ``PGError`` of kind `.usage` ("no database session free"): a slow
/// database makes callers fail fast instead of piling up. A waiting task that is cancelled leaves the
/// line at once.
///
/// ```swift
/// let pool = PGPool(configuration: config, size: 4)
/// let count = try await pool.withSession { try await $0.query("SELECT count(*) FROM t") }
/// ```
public actor PGPool {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<PGSession, any Error>
    }

    private let configuration: PGConfiguration
    /// How long a caller waits for a free session (nil: as long as it takes).
    nonisolated let leaseTimeout: Duration?
    /// The number of sessions.
    nonisolated let size: Int
    private var idle: [PGSession]
    private var all: [PGSession]
    private var waiters: [Waiter] = []
    private var nextWaiterID: UInt64 = 0
    private var closed = false

    /// Creates the pool; no connection is opened until a session is first used. A `size` below 1 is taken as 1.
    public init(configuration: PGConfiguration, size: Int, name: String = "pool", leaseTimeout: Duration? = nil) {
        let size = max(1, size)
        self.configuration = configuration
        self.size = size
        self.leaseTimeout = leaseTimeout
        let sessions = (0..<size).map { PGSession(configuration: configuration, name: "\(name)-\($0)") }
        self.idle = sessions
        self.all = sessions
    }

    /// Leases a session for the duration of `body`.
    public func withSession<T: Sendable>(_ body: @Sendable (PGSession) async throws -> T) async throws -> T {
        let session = try await lease()
        do {
            let value = try await body(session)
            giveBack(session)
            return value
        } catch {
            giveBack(session)
            throw error
        }
    }

    /// Sessions leased right now, and callers waiting for one (for health pages and tests).
    var usage: (leased: Int, waiting: Int) { (all.count - idle.count, waiters.count) }

    /// Closes every session; waiting and later callers get an error.
    public func close() async {
        closed = true
        for waiter in waiters { waiter.continuation.resume(throwing: PGError(.usage, "the pool is closed")) }
        waiters.removeAll()
        for session in all { await session.close() }
    }

    private func lease() async throws -> PGSession {
        guard !closed else { throw PGError(.usage, "the pool is closed") }
        if let session = idle.popLast() { return session }
        try Task.checkCancellation()
        nextWaiterID &+= 1
        let id = nextWaiterID
        // The waiter is queued before this actor is left (the continuation's body runs on it), so the
        // timeout and the cancellation below, which need the actor, always find it queued or served.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append(Waiter(id: id, continuation: continuation))
                if let leaseTimeout {
                    let size = size
                    Task {
                        try? await Task.sleep(for: leaseTimeout)
                        await self.abandon(id, PGError(.usage, "no database session free within \(leaseTimeout) (all \(size) busy)"))
                    }
                }
            }
        } onCancel: {
            Task { await self.abandon(id, CancellationError()) }
        }
    }

    /// Takes a waiter out of line with `error` (nothing happens when it was served meanwhile).
    private func abandon(_ id: UInt64, _ error: any Error) {
        if let index = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: index).continuation.resume(throwing: error)
        }
    }

    private func giveBack(_ session: PGSession) {
        if !waiters.isEmpty {
            waiters.removeFirst().continuation.resume(returning: session)
        } else {
            idle.append(session)
        }
    }
}
