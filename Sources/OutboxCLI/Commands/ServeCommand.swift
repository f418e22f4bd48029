import ArgumentParser
import FlexChargeAPI
import Foundation
import LibPQ
import Logging
import OutboxEngine
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

            Examples:
              flexcharge-outbox serve --port 8081
              flexcharge-outbox serve --host 0.0.0.0 --public-host hooks.gateway.example --allow-remote-plain-http
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

    @OptionGroup var flexCharge: FlexChargeURLOptions

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        ProcessSetup.bootstrapLogging(logLevel)
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
        let session = try await database.connect(name: "serve")
        let clients = Dictionary(uniqueKeysWithValues: flexCharge.environments.map { name, environment in
            (name.rawValue, FlexChargeClient(environment: environment, logger: logger))
        })
        let app = IntegrationServer.application(
            configuration: .init(host: host, port: port, tokenizeSecret: secret, allowRemotePlainHTTP: allowRemotePlainHttp,
                                 publicHost: publicHost, clockSkew: .seconds(clockSkewSeconds)),
            webhooks: WebhookReceiver(session: session, sealer: sealer, clockSkew: .seconds(clockSkewSeconds), logger: logger),
            tokenizer: CardTokenizer(session: session, sealer: sealer, clients: clients, logger: logger),
            logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        for client in clients.values { try? await client.shutdown() }
        await session.close()
    }
}
