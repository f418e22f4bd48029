import ArgumentParser
import FlexChargeAPI
import Foundation
import LibPQ
import Logging
import Metrics
import OutboxEngine
import OutboxServers
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `flexcharge-outbox worker`: the long-running process.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Claim outbox events, call FlexCharge, record the outcomes (runs until SIGTERM).",
        discussion: """
            Run as many workers as you like, on as many machines: they share the work through row \
            locks and leases. A worker woken by NOTIFY picks up a CIT evaluate at once; a backlog of \
            transmits never takes the slots kept for CIT (--reserved-cit-slots). SIGTERM or SIGINT \
            stops claiming, lets calls in flight finish for --grace-seconds, records every outcome \
            and exits 0.

            Merchant secrets are stored sealed; the worker opens them with the key in \
            FLEXCHARGE_CREDENTIALS_KEY (base64 of 32 bytes) or the file FLEXCHARGE_CREDENTIALS_KEY_FILE.

            Examples:
              flexcharge-outbox worker
              flexcharge-outbox worker --concurrency 128 --http-port 9090
              flexcharge-outbox worker --sandbox-url http://127.0.0.1:8080/v1/ --log-level debug
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "HTTP calls in flight at most.")
    var concurrency = 64

    @Option(help: "Events claimed per claim at most.")
    var batchSize = 64

    @Option(help: "Events claimed ahead of free slots, so a finished call starts the next at once (default: three quarters of --concurrency).")
    var prefetch: Int?

    @Option(help: "Slots kept for CIT evaluates (a shopper is waiting).")
    var reservedCitSlots = 4

    @Option(help: "Lease length in seconds; leases of long calls are renewed.")
    var leaseSeconds = 60.0

    @Option(help: "Poll the queue this often when no NOTIFY arrives (milliseconds).")
    var pollIntervalMs = 1000

    @OptionGroup var retry: RetryPolicyOptions

    @Option(help: "Seconds in-flight calls may take to finish after SIGTERM.")
    var graceSeconds = 20.0

    @Option(help: "FlexCharge connect timeout in seconds.")
    var connectTimeoutSeconds = 5.0

    @Option(help: "FlexCharge request timeout in seconds (a timeout after sending is ambiguous).")
    var requestTimeoutSeconds = 30.0

    @Option(help: """
        Seconds a refund whose call may have reached FlexCharge (timeout or reset after sending; refunds carry \
        no idempotency key) is given to land before it is looked up (default: --request-timeout-seconds).
        """)
    var refundSettleSeconds: Double?

    @OptionGroup var flexCharge: FlexChargeURLOptions

    @Option(help: "Port of /healthz, /readyz and /metrics (0 to disable).")
    var httpPort = 9090

    @Option(help: "Address the health port binds to.")
    var httpHost = "0.0.0.0"

    @Option(help: "Identifies this worker in leases and the attempt ledger (default host:pid:random).")
    var workerId: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Prune finished history this often, one worker at a time (0: never; run `prune` instead).")
    var pruneIntervalMinutes = 10.0

    @OptionGroup var retention: RetentionOptions

    func run() async throws {
        ProcessSetup.bootstrapLogging(logLevel)
        let logger = Logger(label: "flexcharge.worker")
        let sealer = try ProcessSetup.credentialSealer()
        let registry = ProcessSetup.bootstrapPrometheus()

        // Fail fast, with one line, when the database cannot be reached at all.
        await (try database.connect()).close()

        var configuration = WorkerConfiguration(
            workerID: workerId ?? WorkerConfiguration.defaultWorkerID(),
            concurrency: concurrency, batchSize: batchSize, prefetch: prefetch, reservedForCIT: reservedCitSlots,
            lease: .milliseconds(Int64(leaseSeconds * 1000)), pollInterval: .milliseconds(pollIntervalMs),
            retryPolicy: retry.policy,
            drainGracePeriod: .milliseconds(Int64(graceSeconds * 1000)),
            environments: flexCharge.environments,
            client: FlexChargeClientConfiguration(
                connectTimeout: .milliseconds(Int64(connectTimeoutSeconds * 1000)),
                requestTimeout: .milliseconds(Int64(requestTimeoutSeconds * 1000))))
        configuration.lookupSettleTime = refundSettleSeconds.map { .milliseconds(Int64($0 * 1000)) }
        let health = WorkerHealth()
        let worker = OutboxWorker(
            configuration: configuration, database: database.configuration, sealer: sealer, health: health, logger: logger)
        // With a health port, the worker claims nothing until that port listens.
        let listening = httpPort > 0 ? StartGate() : nil
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: listening.map { GatedService(gate: $0, wrapped: worker) as any Service } ?? worker,
                successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if pruneIntervalMinutes > 0 {
            services.append(.init(
                service: RetentionService(
                    policy: retention.policy, interval: .seconds(pruneIntervalMinutes * 60), database: database.configuration,
                    logger: Logger(label: "flexcharge.prune")),
                successTerminationBehavior: .ignore))
        }
        if let listening {
            services.append(.init(service: HealthServer.application(
                host: httpHost, port: httpPort, notReadyReason: { health.notReadyReason }, metrics: { registry.emitToBuffer() },
                logger: Logger(label: "flexcharge.http"), onServerRunning: { _ in listening.open() })))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
