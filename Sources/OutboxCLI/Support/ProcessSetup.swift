import Logging
import Metrics
import OutboxEngine
import Prometheus

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

    /// swift-metrics to Prometheus (the executable's choice, as swift-metrics asks): the registry whose text a
    /// `/metrics` route serves.
    static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
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
