import LibPQ
import Logging
import OutboxEngine

/// What pages use to do their work: the database (a pool shared by all requests), the workers' retry
/// rules (give them to `OperatorActions` so the console retries as the CLI does), the credentials
/// sealer (nil when the console was started without `FLEXCHARGE_CREDENTIALS_KEY`: credential forms
/// then say so) and a logger (never log a secret, a password, a payload or a card field).
public struct ConsoleServices: Sendable {
    public let pool: PGPool
    public let retryPolicy: RetryPolicy
    public let sealer: CredentialSealer?
    public let logger: Logger

    public init(pool: PGPool, retryPolicy: RetryPolicy = RetryPolicy(), sealer: CredentialSealer? = nil, logger: Logger) {
        self.pool = pool
        self.retryPolicy = retryPolicy
        self.sealer = sealer
        self.logger = logger
    }

    /// Runs `body` with one database session of the pool (waiting for a free one).
    public func withSession<T: Sendable>(_ body: @Sendable (PGSession) async throws -> T) async throws -> T {
        try await pool.withSession(body)
    }
}
