import Hummingbird
import OutboxEngine

/// An error a page throws to answer with an error page: the status and a message for the user
/// (shown escaped in the layout; never put a secret in it). Other errors become a 500 page whose
/// text says nothing about the cause (the log has it).
public struct ConsoleError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    public static func notFound(_ what: String) -> ConsoleError { ConsoleError(.notFound, "\(what) was not found.") }
    public static func badRequest(_ message: String) -> ConsoleError { ConsoleError(.badRequest, message) }

    /// Runs an engine action; its refusal (``OperatorError``: "already paused", "not paused", an
    /// unknown event, a wrong state) becomes an error page with `status` and the engine's message.
    static func refusing<T>(as status: HTTPResponse.Status = .badRequest, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as OperatorError {
            throw ConsoleError(status, error.description)
        }
    }

    /// The same for a synchronous check.
    static func refusing<T>(as status: HTTPResponse.Status = .badRequest, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as OperatorError {
            throw ConsoleError(status, error.description)
        }
    }
}
