/// An error from the PostgreSQL layer.
///
/// It carries the SQLSTATE and the server's primary message, and never the statement's
/// parameter values: the server's DETAIL (which may quote a row, e.g. "Failing row contains ...")
/// is deliberately not kept, so card data or secrets in a failing row cannot reach a log line.
public struct PGError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Kind: String, Sendable, Equatable {
        /// Could not connect, or the connection broke (server restart, network).
        case connection
        /// The server rejected the statement (see ``PGError/sqlState``).
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The layer was used wrongly (e.g. a closed pool or session).
        case usage
        /// The awaiting Swift task was cancelled: the statement was cancelled on the server
        /// (`PQcancel`), or the connection was closed when the server did not answer the cancel.
        case cancelled
    }

    public let kind: Kind
    /// The five-character SQLSTATE (e.g. `23514` check_violation), when the server sent one.
    public let sqlState: String?
    /// The server's primary message, or a description of the client-side failure.
    public let message: String
    /// The column the server named (`COLUMN` field, e.g. from a validation trigger), if any.
    public let column: String?
    /// The constraint the server named, if any.
    public let constraint: String?

    public init(
        _ kind: Kind, _ message: String, sqlState: String? = nil, column: String? = nil, constraint: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.column = column
        self.constraint = constraint
    }

    public var description: String {
        if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
        return message
    }

    /// True when the statement was cancelled because its task was.
    public var isCancellation: Bool { kind == .cancelled }

    /// True for SQLSTATE class 08 (connection exception) and for client-side connection failures.
    public var isConnectionFailure: Bool {
        kind == .connection || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01"
            || sqlState == "57P02" || sqlState == "57P03"
    }
}
