import Logging
import OutboxEngine

/// Start-up steps shared by the long-running commands.
enum ProcessSetup {
    /// swift-log to stderr at `level`, structured (key=value metadata).
    static func bootstrapLogging(_ level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// The credentials key ring from the environment (`FLEXCHARGE_CREDENTIALS_KEY`/`_FILE`,
    /// `FLEXCHARGE_CREDENTIALS_KEYS`/`_KEYS_FILE`, see docs/credentials.md); a missing or bad key is
    /// bad input (exit 2).
    static func credentialSealer() throws -> CredentialSealer {
        do {
            return try CredentialSealer.fromEnvironment()
        } catch {
            throw CLIFailure.badInput(error.description)
        }
    }
}
