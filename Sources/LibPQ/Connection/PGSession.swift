import Foundation
import Logging

/// One PostgreSQL connection, isolated on its own OS thread.
///
/// Every method runs on the session's ``DedicatedThreadExecutor``, so blocking libpq calls never
/// run on Swift concurrency's cooperative pool. The connection is opened lazily, and reopened
/// when the server closed it (restart, idle kill) — see ``PGRawConnection/ensureOpen()``.
///
/// ```swift
/// let session = PGSession(configuration: .init(url: "postgresql://localhost/app"))
/// let rows = try await session.query("SELECT id FROM flexcharge.outbox WHERE state = $1", ["pending"])
/// try await session.withTransaction { tx in
///     try tx.execute("UPDATE flexcharge.outbox SET state = 'skipped' WHERE id = $1", [id])
/// }
/// ```
public actor PGSession {
    private let executor: DedicatedThreadExecutor
    private let connection: PGRawConnection
    private var inTransaction = false
    private var closed = false

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(configuration: PGConfiguration, name: String = "pg") {
        self.executor = DedicatedThreadExecutor(name: "flexcharge-\(name)")
        self.connection = PGRawConnection(
            conninfo: configuration.conninfo, applicationName: configuration.applicationName)
    }

    /// Opens the connection now rather than on first use (to report a bad URL at start-up).
    public func connect() throws(PGError) {
        try prepare()
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PGEncodable] = []) throws(PGError) -> PGResult {
        try prepare()
        return try run { () throws(PGError) in try connection.execute(sql, parameters.map(\.pgText)) }
    }

    /// Runs one statement for its effect; returns the number of rows it touched.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [any PGEncodable] = []) throws(PGError) -> Int {
        try query(sql, parameters).affectedRows
    }

    /// Runs SQL text that may hold several statements and no parameters (migration files).
    public func executeScript(_ sql: String) throws(PGError) {
        try prepare()
        _ = try run { () throws(PGError) in try connection.execute(sql, []) }
    }

    /// Sends all statements in one round trip (libpq pipeline mode); they run as one implicit
    /// transaction and the first error aborts the rest.
    public func pipeline(_ statements: [(sql: String, parameters: [any PGEncodable])]) throws(PGError) -> [PGResult] {
        try prepare()
        let raw = statements.map { (sql: $0.sql, parameters: $0.parameters.map(\.pgText)) }
        return try run { () throws(PGError) in try connection.executePipeline(raw) }
    }

    /// Runs `body` inside BEGIN/COMMIT on this session's thread; any error thrown by the body or
    /// the server rolls the transaction back and is rethrown. The body is synchronous on purpose:
    /// a transaction holds row locks, so it must not wait on anything but the database.
    public func withTransaction<T: Sendable>(
        isolation level: String = "READ COMMITTED",
        _ body: @Sendable (isolated PGSession) throws -> T
    ) throws -> T {
        precondition(!inTransaction, "nested transactions are not supported")
        try prepare()
        try run { () throws(PGError) in _ = try connection.execute("BEGIN ISOLATION LEVEL \(level)", []) }
        inTransaction = true
        defer { inTransaction = false }
        do {
            let value = try body(self)
            try run { () throws(PGError) in _ = try connection.execute("COMMIT", []) }
            return value
        } catch {
            if connection.isOpen { _ = try? connection.execute("ROLLBACK", []) }
            throw error
        }
    }

    /// Subscribes this session to `channel` (the channel name is quoted as an identifier).
    public func listen(_ channel: String) throws(PGError) {
        try query("LISTEN \(quotedIdentifier(channel))")
    }

    /// Waits up to `timeoutMilliseconds` for NOTIFY messages on the channels this session listens
    /// to. Blocks only this session's own thread.
    public func waitForNotifications(timeoutMilliseconds: Int32) throws(PGError) -> [PGNotification] {
        try prepare()
        return try run { () throws(PGError) in
            try connection.waitForNotifications(timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// True when the connection is open right now (it is reopened on next use otherwise).
    public var isConnected: Bool { connection.isOpen }

    /// Closes the connection and stops the session's thread. The session cannot be used after.
    public func close() {
        closed = true
        connection.close()
        executor.shutdown()
    }

    private func prepare() throws(PGError) {
        guard !closed else { throw PGError(.usage, "the session is closed") }
        // Inside a transaction a reconnect would silently lose the transaction: let it fail.
        if !inTransaction { try connection.ensureOpen() }
    }

    /// Runs a libpq call; after a connection failure the connection is dropped, so the next call
    /// reconnects instead of failing again.
    private func run<T>(_ call: () throws(PGError) -> T) throws(PGError) -> T {
        do {
            return try call()
        } catch {
            if error.isConnectionFailure || !connection.isOpen { connection.close() }
            throw error
        }
    }
}

/// Quotes an SQL identifier (`"name"` with embedded quotes doubled).
public func quotedIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
