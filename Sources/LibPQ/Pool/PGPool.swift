/// A small fixed-size pool of ``PGSession``s, each on its own thread.
///
/// Sessions are opened lazily and reopen themselves after a server restart, so the pool never
/// has to replace an object: a leased session that hit a dead connection reconnects on its next
/// statement.
///
/// ```swift
/// let pool = PGPool(configuration: config, size: 4)
/// let count = try await pool.withSession { try await $0.query("SELECT count(*) FROM t") }
/// ```
public actor PGPool {
    private let configuration: PGConfiguration
    private var idle: [PGSession]
    private var all: [PGSession]
    private var waiters: [CheckedContinuation<PGSession, any Error>] = []
    private var closed = false

    /// Creates the pool; no connection is opened until a session is first used.
    public init(configuration: PGConfiguration, size: Int, name: String = "pool") {
        precondition(size > 0, "a pool needs at least one session")
        self.configuration = configuration
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

    /// Runs one statement on any session.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PGEncodable] = []) async throws -> PGResult {
        try await withSession { try await $0.query(sql, parameters) }
    }

    /// Runs a transaction on any session (see ``PGSession/withTransaction(isolation:_:)``).
    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (isolated PGSession) throws -> T) async throws -> T {
        try await withSession { session in try await session.withTransaction(body) }
    }

    /// Closes every session; waiting and later callers get an error.
    public func close() async {
        closed = true
        for waiter in waiters { waiter.resume(throwing: PGError(.usage, "the pool is closed")) }
        waiters.removeAll()
        for session in all { await session.close() }
    }

    private func lease() async throws -> PGSession {
        guard !closed else { throw PGError(.usage, "the pool is closed") }
        if let session = idle.popLast() { return session }
        return try await withCheckedThrowingContinuation { waiters.append($0) }
    }

    private func giveBack(_ session: PGSession) {
        if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: session)
        } else {
            idle.append(session)
        }
    }
}
