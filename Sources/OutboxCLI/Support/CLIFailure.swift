import LibPQ

/// A failure reported to the operator as one line on stderr with a chosen exit status.
struct CLIFailure: Error {
    let message: String
    let exitCode: Int32

    /// Bad input: an unknown merchant, a malformed date, an unknown id. Exit status 2.
    static func badInput(_ message: String) -> CLIFailure { CLIFailure(message: message, exitCode: 2) }

    /// Anything else: the database is unreachable, a statement failed. Exit status 1.
    static func failed(_ message: String) -> CLIFailure { CLIFailure(message: message, exitCode: 1) }

    /// Wraps a database error into a readable line.
    static func database(_ error: any Error) -> CLIFailure {
        if let pg = error as? PGError {
            switch pg.kind {
            case .connection: return .failed("cannot connect to PostgreSQL: \(pg.message)")
            case .usage: return .failed(pg.message)
            default: return .failed("database error: \(pg)")
            }
        }
        return .failed("\(error)")
    }
}
