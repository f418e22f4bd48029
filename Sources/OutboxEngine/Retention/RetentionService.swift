import LibPQ
import Logging
import ServiceLifecycle

/// The worker's pruner: every `interval` (first after a random part of it, so workers started
/// together do not all try at once) one pass of ``Pruner``, on a connection opened for the pass
/// and closed after it, so the worker holds it only for seconds; the advisory lock lets one
/// worker prune while the others skip. `flexcharge-outbox prune` runs the same pass once.
public struct RetentionService: Service {
    private let pruner: Pruner
    private let interval: Duration
    private let database: PGConfiguration
    private let logger: Logger

    /// Statements of a pass are small batches; this bounds one that is not.
    static let statementTimeout: Duration = .seconds(30)

    public init(policy: RetentionPolicy, interval: Duration, database: PGConfiguration,
                logger: Logger = Logger(label: "flexcharge.prune")) {
        self.pruner = Pruner(policy: policy, logger: logger)
        self.interval = interval
        var database = database
        database.statementTimeout = Self.statementTimeout
        self.database = database
        self.logger = logger
    }

    public func run() async throws {
        let first = Duration.seconds(Double.random(in: 0...max(0.001, interval.seconds)))
        // On SIGTERM a pass is cancelled: each batch is its own transaction, so nothing is half done.
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: first)
            while !Task.isCancelled {
                await passOnce()
                try await Task.sleep(for: interval)
            }
        }
    }

    private func passOnce() async {
        let session = PGSession(configuration: database, name: "prune", logger: logger)
        do {
            let started = ContinuousClock.now
            if let report = try await pruner.pass(on: session) {
                logger.info("pruned finished history", metadata: [
                    "deleted": "\(report)", "seconds": "\(Int((ContinuousClock.now - started).seconds))",
                ])
            } else {
                logger.debug("another pruner holds the lock; skipped this pass")
            }
        } catch {
            logger.warning("pruning failed; the next pass tries again", metadata: ["error": "\(error)"])
        }
        await session.close()
    }
}
