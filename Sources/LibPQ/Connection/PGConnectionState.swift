/// What a ``PGSession`` knows about its connection apart from the libpq handle: which connection
/// it is on (its generation), what a new connection must restore (the LISTENs), and whether a new
/// connection may be opened at all.
///
/// A session reconnects on its own after the server closed its connection (restart, idle kill,
/// network), except where a new connection would silently lose something:
/// - inside a transaction (the server rolled it back with the old connection);
/// - while pinned (``PGSession/pin(reason:)``: session state such as an advisory lock lives on
///   this connection only);
/// - once closed.
/// Every new connection gets a new generation, so owners can see that it changed; LISTENs are
/// re-issued on it before anything else runs.
///
/// Pure state, no I/O (the postgres-nio way): `PGConnectionStateTests` drive it without a
/// database.
struct PGConnectionState: Sendable, Equatable {
    /// What the session must do before it runs a statement.
    enum Action: Equatable {
        /// The current connection is usable.
        case proceed
        /// Open a connection, then call ``connected()`` and LISTEN on the channels it returns.
        /// `reconnect` is true when an earlier connection existed (its owner should hear of it).
        case connect(reconnect: Bool)
        /// Refuse the statement.
        case fail(PGError)
    }

    /// 0 before the first connection; +1 for every connection opened.
    private(set) var generation: UInt64 = 0
    /// The channels LISTENed to, in the order they were first LISTENed.
    private(set) var channels: [String] = []
    /// Why the session is pinned to its connection (nil: not pinned).
    private(set) var pinReason: String?
    private(set) var inTransaction = false
    private(set) var closed = false
    /// The connection of `generation` broke and has not been replaced yet.
    private(set) var lost = false

    /// Decides what happens before a statement. `connectionOpen` is whether the libpq connection is
    /// open and healthy right now.
    func beforeStatement(connectionOpen: Bool) -> Action {
        if closed { return .fail(PGError(.usage, "the session is closed")) }
        if connectionOpen && !lost { return .proceed }
        if generation == 0 { return .connect(reconnect: false) }
        if inTransaction {
            return .fail(PGError(
                .connection, "the connection was lost during a transaction; the server rolled the transaction back"))
        }
        if let pinReason {
            return .fail(PGError(
                .connection, "the connection was lost; not reconnecting because this session \(pinReason)"))
        }
        return .connect(reconnect: true)
    }

    /// A connection was opened: returns the channels to LISTEN on before anything else.
    mutating func connected() -> [String] {
        generation += 1
        lost = false
        return channels
    }

    /// The connection broke. Returns true the first time for this generation (log it once).
    mutating func connectionLost() -> Bool {
        guard generation > 0, !lost else { return false }
        lost = true
        return true
    }

    /// A LISTEN succeeded on the current connection.
    mutating func listened(_ channel: String) {
        if !channels.contains(channel) { channels.append(channel) }
    }

    mutating func unlistened(_ channel: String) {
        channels.removeAll { $0 == channel }
    }

    /// Pins the session to its current connection. Refused before the first connection and after a
    /// loss (pin a live connection, so nothing held earlier is assumed to still be held).
    mutating func pin(reason: String) throws(PGError) {
        if closed { throw PGError(.usage, "the session is closed") }
        guard generation > 0, !lost else { throw PGError(.usage, "pin needs an open connection") }
        guard pinReason == nil else { throw PGError(.usage, "the session is already pinned (it \(pinReason!))") }
        pinReason = reason
    }

    mutating func unpin() { pinReason = nil }

    mutating func beginTransaction() { inTransaction = true }
    mutating func endTransaction() { inTransaction = false }

    mutating func close() { closed = true }
}
