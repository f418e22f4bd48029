import ArgumentParser
import FlexChargeAPI
import Foundation
import LibPQ
import Logging
import OutboxEngine
import OutboxServers
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `flexcharge-outbox serve`: FlexCharge's webhooks and the gateway's tokenization endpoint.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive FlexCharge webhooks and tokenize cards for the gateway (runs until SIGTERM).",
        discussion: """
            POST /webhooks/flexcharge?merchant=<merchant_id>
              FlexCharge's webhooks. Configure this URL (behind your HTTPS endpoint) in each merchant's \
            FlexCharge portal, and store the portal's subscriber key with the merchant's credentials \
            (webhookKey). Deliveries are verified (x-fc-* HMAC-SHA512, --clock-skew-seconds, nonce \
            replay refused), recorded once in flexcharge.outcome_events, and settle the evaluate that \
            awaits its outcome (the gateway gets NOTIFY flexcharge_event_done).

            POST /v1/tokenize  (Authorization: Bearer $FLEXCHARGE_TOKENIZE_SECRET)
              Body {"merchantId", "channel", "origin", "site", "card": {"firstName", "lastName", "number", \
            "month", "year", "verificationValue"}} -> {"token", "environment", "lastFour"}. The card goes to \
            FlexCharge with the merchant's tokenization key and is neither stored nor logged. Plain HTTP \
            is refused from non-loopback peers unless --allow-remote-plain-http.

            The secret comes from FLEXCHARGE_TOKENIZE_SECRET or the file FLEXCHARGE_TOKENIZE_SECRET_FILE; \
            without it /v1/tokenize answers 503. Merchant secrets are opened with FLEXCHARGE_CREDENTIALS_KEY.

            Limits (every request comes from outside; the defaults suit one gateway behind a proxy):
              A request must arrive whole (head and body) within --read-timeout-seconds of its first byte, \
            or its connection is closed (slow senders); a connection with no request is closed after \
            --idle-timeout-seconds. At most --max-connections are served at once; more wait in the listen \
            backlog (--backlog) and are refused when it is full. Each POST route has a token bucket per \
            client address and one for all clients: a request over the limit is answered 429 with \
            Retry-After. Webhooks count before their signature is checked. Behind a proxy every request \
            comes from the proxy's address: raise the per-client rates to the global ones. Requests share \
            --database-connections PostgreSQL sessions and wait at most --database-wait-seconds for one \
            (503 with Retry-After: 1). Request-supplied text is quoted and escaped in log lines.

            Metrics: /metrics (Prometheus text), /healthz and /readyz on their own port, --metrics-port \
            (9091; 0 turns it off), bound to --metrics-host (loopback by default: give 0.0.0.0 where a \
            scraper on another host reads it, never the address the internet reaches). \
            flexcharge_outbox_serve_requests_total{route,status} counts requests by route (webhook, tokenize, \
            healthz, other) and HTTP status; flexcharge_outbox_serve_request_duration_seconds{route} times them.

            Examples:
              flexcharge-outbox serve --port 8081
              flexcharge-outbox serve --host 0.0.0.0 --public-host hooks.gateway.example --allow-remote-plain-http
              flexcharge-outbox serve --port 8081 --metrics-host 0.0.0.0 --metrics-port 9091
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Address to bind (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "Port to bind.")
    var port = 8081

    @Flag(help: "Accept /v1/tokenize over plain HTTP from non-loopback peers (e.g. a TLS proxy on another host).")
    var allowRemotePlainHttp = false

    @Option(help: "The Host FlexCharge signs when a proxy rewrites it (default: the request's Host).")
    var publicHost: String?

    @Option(help: "Accepted difference between x-fc-date and our clock, in seconds.")
    var clockSkewSeconds = 300

    @Option(help: ArgumentHelp("Seconds from a request's first byte to its last (head and body) before the connection is closed.",
                               valueName: "seconds"))
    var readTimeoutSeconds = 10

    @Option(help: ArgumentHelp("Seconds a connection may stay open without a request (keep-alive) before it is closed.",
                               valueName: "seconds"))
    var idleTimeoutSeconds = 60

    @Option(help: ArgumentHelp("Connections served at once; more wait in the listen backlog.", valueName: "n"))
    var maxConnections = 256

    @Option(help: ArgumentHelp("Connections the kernel queues beyond --max-connections before it refuses them.", valueName: "n"))
    var backlog = 256

    @Option(help: ArgumentHelp("PostgreSQL sessions shared by all requests.", valueName: "n"))
    var databaseConnections = 4

    @Option(help: ArgumentHelp("Seconds a request waits for a free PostgreSQL session before it is answered 503.", valueName: "seconds"))
    var databaseWaitSeconds = 5

    @Option(help: ArgumentHelp("POST /v1/tokenize requests per second per client address, as rate/burst (0 turns the limit off).",
                               valueName: "rate/burst"))
    var tokenizeRate = "10/20"

    @Option(help: ArgumentHelp("POST /v1/tokenize requests per second for all clients together, as rate/burst.", valueName: "rate/burst"))
    var tokenizeGlobalRate = "100/200"

    @Option(help: ArgumentHelp("POST /webhooks/flexcharge requests per second per client address (counted before the signature check), as rate/burst.",
                               valueName: "rate/burst"))
    var webhookRate = "20/100"

    @Option(help: ArgumentHelp("POST /webhooks/flexcharge requests per second for all clients together, as rate/burst.", valueName: "rate/burst"))
    var webhookGlobalRate = "200/400"

    @OptionGroup var flexCharge: FlexChargeURLOptions

    @Option(help: "Port of /metrics, /healthz and /readyz, apart from --port (0 to disable).")
    var metricsPort = 9091

    @Option(help: "Address the metrics port binds to (keep it off the address the internet reaches).")
    var metricsHost = "127.0.0.1"

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        ProcessSetup.bootstrapLogging(logLevel)
        let registry = ProcessSetup.bootstrapPrometheus()
        let logger = Logger(label: "flexcharge.serve")
        let sealer = try ProcessSetup.credentialSealer()
        let environment = ProcessInfo.processInfo.environment
        var secret = environment["FLEXCHARGE_TOKENIZE_SECRET"]
        if secret == nil, let path = environment["FLEXCHARGE_TOKENIZE_SECRET_FILE"] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIFailure.badInput("cannot read FLEXCHARGE_TOKENIZE_SECRET_FILE \(path)")
            }
            secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let value = secret, value.count < 16 {
            throw CLIFailure.badInput("FLEXCHARGE_TOKENIZE_SECRET must be at least 16 characters")
        }
        let limits = try serveLimits()
        // One session opened now, so a wrong URL or password fails at start-up with one clear line.
        let probe = try await database.connect(name: "serve-check")
        await probe.close()
        let pool = PGPool(configuration: database.configuration, size: databaseConnections, name: "serve",
                          leaseTimeout: limits.databaseWait)
        let clients = Dictionary(uniqueKeysWithValues: flexCharge.environments.map { name, environment in
            (name.rawValue, FlexChargeClient(environment: environment, logger: logger))
        })
        let app = IntegrationServer.application(
            configuration: .init(host: host, port: port, tokenizeSecret: secret, allowRemotePlainHTTP: allowRemotePlainHttp,
                                 publicHost: publicHost, clockSkew: .seconds(clockSkewSeconds), limits: limits),
            pool: pool,
            webhooks: { session in WebhookReceiver(session: session, sealer: sealer, clockSkew: .seconds(clockSkewSeconds), logger: logger) },
            tokenizer: { session in CardTokenizer(session: session, sealer: sealer, clients: clients, logger: logger) },
            logger: logger)
        var services: [any Service] = [app]
        if metricsPort > 0 {
            services.append(HealthServer.application(
                host: metricsHost, port: metricsPort, notReadyReason: { nil }, metrics: { registry.emitToBuffer() },
                logger: Logger(label: "flexcharge.metrics")))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        for client in clients.values { try? await client.shutdown() }
        await pool.close()
    }

    /// The options as ``IntegrationServer/Limits``; a bad value is bad input (exit 2).
    func serveLimits() throws -> IntegrationServer.Limits {
        func positive(_ value: Int, _ option: String, upTo maximum: Int = 86_400) throws -> Int {
            guard (1...maximum).contains(value) else { throw CLIFailure.badInput("--\(option) must be from 1 to \(maximum)") }
            return value
        }
        _ = try positive(databaseConnections, "database-connections", upTo: 1000)
        return IntegrationServer.Limits(
            readTimeout: .seconds(try positive(readTimeoutSeconds, "read-timeout-seconds")),
            idleTimeout: .seconds(try positive(idleTimeoutSeconds, "idle-timeout-seconds")),
            maximumConnections: try positive(maxConnections, "max-connections", upTo: 100_000),
            backlog: try positive(backlog, "backlog", upTo: 65_535),
            tokenizePerClient: try Self.rate(tokenizeRate, "tokenize-rate"),
            tokenizeGlobal: try Self.rate(tokenizeGlobalRate, "tokenize-global-rate"),
            webhookPerClient: try Self.rate(webhookRate, "webhook-rate"),
            webhookGlobal: try Self.rate(webhookGlobalRate, "webhook-global-rate"),
            databaseWait: .seconds(try positive(databaseWaitSeconds, "database-wait-seconds", upTo: 3600)))
    }

    /// `rate/burst` (e.g. `10/20`) or `rate` alone (burst = twice the rate); `0` is no limit.
    static func rate(_ text: String, _ option: String) throws -> RateLimit {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let rate = Double(parts[0]), rate.isFinite, rate >= 0, rate <= 1_000_000 else {
            throw CLIFailure.badInput("--\(option) must be rate/burst, e.g. 10/20 (requests per second, then the burst)")
        }
        if parts.count == 1 { return RateLimit(perSecond: rate, burst: max(1, Int(rate * 2))) }
        guard let burst = Int(parts[1]), burst >= 1, burst <= 1_000_000 else {
            throw CLIFailure.badInput("--\(option): the burst after / must be a whole number from 1 to 1000000")
        }
        return RateLimit(perSecond: rate, burst: burst)
    }
}
