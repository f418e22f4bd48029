import Foundation
import Logging

/// One PostgreSQL connection, isolated on its own OS thread.
///
/// Every method runs on the session's ``DedicatedThreadExecutor``, so blocking libpq calls never
/// run on Swift concurrency's cooperative pool. The connection is opened lazily, and reopened
/// when the server closed it (restart, idle kill, network) — except inside a transaction and while
/// the session is pinned (``pin(reason:)``), where a new connection would silently lose a rolled
/// back transaction or a session-level lock: then the statement fails. See ``PGConnectionState``.
///
/// A reconnect is visible: ``connectionGeneration`` grows by one for every connection opened, the
/// channels the session LISTENs to are LISTENed again on the new connection before anything else
/// runs, and with a logger the session logs the loss (warning) and the reconnect (notice), once each.
///
/// Nothing waits without a bound: every statement is bounded by the session's statement timeout
/// (server-side, plus ``PGConfiguration/cancelGrace`` client-side) or an explicit `timeout`, and a
/// task cancelled while its statement waits cancels it on the server (`PQcancel`; the error is of
/// kind `.cancelled`). A statement started by an already cancelled task runs, so clean-up after
/// cancellation still reaches the database.
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
    private var state = PGConnectionState()
    private let logger: Logger?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// - Parameters:
    ///   - name: names the session's thread (`flexcharge-<name>`) and its log lines.
    ///   - logger: when given, losing the connection and reconnecting are logged (never the conninfo).
    public init(configuration: PGConfiguration, name: String = "pg", logger: Logger? = nil) {
        self.executor = DedicatedThreadExecutor(name: "flexcharge-\(name)")
        self.connection = PGRawConnection(configuration: configuration)
        if var logger {
            logger[metadataKey: "db_session"] = "\(name)"
            self.logger = logger
        } else {
            self.logger = nil
        }
    }

    /// Opens the connection now rather than on first use (to report a bad URL at start-up).
    public func connect() throws(PGError) {
        try prepare()
    }

    /// Runs one statement and returns its rows. `timeout` replaces the session's bound for this
    /// statement (client-side: when it passes the connection is closed and a `.connection` error
    /// thrown).
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PGEncodable] = [], timeout: Duration? = nil) throws(PGError) -> PGResult {
        try prepare()
        let raw = parameters.map(\.pgParameter)
        return try run { () throws(PGError) in try connection.execute(sql, raw, wait: connection.wait(timeout: timeout)) }
    }

    /// Runs one statement for its effect; returns the number of rows it touched.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [any PGEncodable] = [], timeout: Duration? = nil) throws(PGError) -> Int {
        try query(sql, parameters, timeout: timeout).affectedRows
    }

    /// Runs SQL text that may hold several statements and no parameters (migration files).
    func executeScript(_ sql: String) throws(PGError) {
        try prepare()
        _ = try run { () throws(PGError) in try connection.execute(sql, [], wait: connection.wait(timeout: nil)) }
    }

    /// Runs `body` inside BEGIN/COMMIT on this session's thread; any error thrown by the body or
    /// the server rolls the transaction back and is rethrown. The body is synchronous on purpose:
    /// a transaction holds row locks, so it must not wait on anything but the database.
    public func withTransaction<T: Sendable>(
        isolation level: String = "READ COMMITTED",
        _ body: @Sendable (isolated PGSession) throws -> T
    ) throws -> T {
        precondition(!state.inTransaction, "nested transactions are not supported")
        try prepare()
        try run { () throws(PGError) in
            _ = try connection.execute("BEGIN ISOLATION LEVEL \(level)", [], wait: connection.wait(timeout: nil))
        }
        state.beginTransaction()
        defer { state.endTransaction() }
        do {
            let value = try body(self)
            try run { () throws(PGError) in _ = try connection.execute("COMMIT", [], wait: connection.wait(timeout: nil)) }
            return value
        } catch {
            if connection.isOpen {
                // Not cancellable: a cancelled task must still leave the connection outside a transaction.
                _ = try? run { () throws(PGError) in
                    try connection.execute("ROLLBACK", [], wait: connection.wait(timeout: nil, cancellable: false))
                }
            }
            throw error
        }
    }

    /// Subscribes this session to `channel` (the channel name is quoted as an identifier). The
    /// session LISTENs again on every new connection.
    public func listen(_ channel: String) throws(PGError) {
        try query("LISTEN \(quotedIdentifier(channel))")
        state.listened(channel)
    }

    /// Waits up to `timeoutMilliseconds` for NOTIFY messages on the channels this session listens
    /// to. Blocks only this session's own thread.
    public func waitForNotifications(timeoutMilliseconds: Int32) throws(PGError) -> [PGNotification] {
        try prepare()
        return try run { () throws(PGError) in
            try connection.waitForNotifications(timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// 0 before the first connection; one more for every connection opened since. A change tells
    /// the owner that the server-side session was replaced (its LISTENs were re-issued; anything
    /// else session-level, such as `SET` or advisory locks, is gone).
    public var connectionGeneration: UInt64 { state.generation }

    /// Pins the session to its connection (opening one if needed) while it holds session state
    /// that a new connection would silently lose, such as an advisory lock: if the connection is
    /// lost, statements fail instead of reconnecting, until ``unpin()``. Returns the generation.
    /// `reason` completes "not reconnecting because this session …" in the error.
    @discardableResult
    public func pin(reason: String) throws(PGError) -> UInt64 {
        try prepare()
        try state.pin(reason: reason)
        return state.generation
    }

    /// Lets the session reconnect again.
    public func unpin() { state.unpin() }

    /// The session's statement timeout (nil: none). The user's own `statement_timeout` (URL options,
    /// `PGOPTIONS`, role or database settings), when set, is what the server applies instead.
    public var statementTimeout: Duration? { connection.statementTimeout }

    /// The server-side statement timeout in force on the current connection (nil: none).
    var effectiveStatementTimeout: Duration? { connection.effectiveStatementTimeout }

    /// Changes the session's statement timeout (nil: none), now and on later connections; the
    /// user's own setting, when there is one, stays in force.
    func setStatementTimeout(_ timeout: Duration?) throws(PGError) {
        try run { () throws(PGError) in try connection.setStatementTimeout(timeout) }
    }

    /// The value libpq settled on for a connection parameter of the open connection (never the
    /// password), e.g. `keepalives_idle`.
    func settledOption(_ keyword: String) -> String? { connection.settledOption(keyword) }

    /// An `IPPROTO_TCP` socket option of the open connection, as the kernel has it.
    func tcpSocketOption(_ name: Int32) -> Int32? { connection.tcpSocketOption(name) }

    /// True when the connection is open right now (it is reopened on next use otherwise).
    var isConnected: Bool { connection.isOpen }

    /// Closes the connection and stops the session's thread. Later calls fail at once.
    public func close() {
        state.close()
        connection.close()
        executor.shutdown()
    }

    /// Makes sure a usable connection is there, or throws: reconnects (and re-LISTENs) where that
    /// loses nothing, fails where it would.
    private func prepare() throws(PGError) {
        let alive = !state.closed && connection.checkAlive()
        if !alive && !state.closed { noteLost(nil) }
        switch state.beforeStatement(connectionOpen: alive) {
        case .proceed:
            return
        case .fail(let error):
            throw error
        case .connect(let reconnect):
            try connection.open()
            let channels = state.connected()
            do throws(PGError) {
                for channel in channels {
                    _ = try connection.execute("LISTEN \(quotedIdentifier(channel))", [], wait: connection.wait(timeout: nil))
                }
            } catch {
                connection.close()
                noteLost(error)
                throw error
            }
            if reconnect {
                var metadata: Logger.Metadata = ["generation": "\(state.generation)"]
                if !channels.isEmpty { metadata["relistened"] = "\(channels.joined(separator: ","))" }
                logger?.notice("reconnected to PostgreSQL", metadata: metadata)
            }
        }
    }

    /// Runs a libpq call; after a connection failure the connection is dropped, so the next call
    /// reconnects (or fails, see ``prepare()``) instead of failing again on a dead socket.
    private func run<T>(_ call: () throws(PGError) -> T) throws(PGError) -> T {
        do {
            return try call()
        } catch {
            if error.isConnectionFailure || !connection.isOpen {
                connection.close()
                noteLost(error)
            }
            throw error
        }
    }

    private func noteLost(_ error: PGError?) {
        guard state.connectionLost() else { return }
        var metadata: Logger.Metadata = ["generation": "\(state.generation)"]
        if let error { metadata["error"] = "\(error)" }
        if let reason = state.pinReason {
            logger?.warning("lost the connection to PostgreSQL; not reconnecting because this session \(reason)", metadata: metadata)
        } else {
            logger?.warning("lost the connection to PostgreSQL; reconnecting on next use", metadata: metadata)
        }
    }
}

/// Quotes an SQL identifier (`"name"` with embedded quotes doubled).
public func quotedIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
