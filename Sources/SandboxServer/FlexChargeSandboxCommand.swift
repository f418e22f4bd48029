import ArgumentParser
import FlexChargeSandbox
import Hummingbird
import Logging

/// `flexcharge-sandbox`: runs the FlexCharge sandbox simulator.
struct FlexChargeSandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexcharge-sandbox",
        abstract: "A FlexCharge API simulator with a ledger, a controllable clock and fault injection.",
        discussion: """
        Serves the FlexCharge API under http://HOST:PORT/v1/ and a control API under /_sandbox/.

        Without --merchant one demo merchant is configured:
          mid              \(SandboxMerchant.demo.mid)
          appKey           \(SandboxMerchant.demo.appKey)
          appSecret        \(SandboxMerchant.demo.appSecret)
          tokenizationKey  \(SandboxMerchant.demo.tokenizationKey)
          webhook key      \(SandboxMerchant.demo.webhookSubscriberKey ?? "")

        Decisions (CIT, first match wins):
          transactionType AUTHORIZATION                     -> CAPTUREREQUIRED
          card 4000300011112220 or payer email has "decline" -> DECLINED
          card 4000002760003184 or payer email has "approve" -> APPROVED
          card 4111111111111111 with payer.phone            -> CHALLENGE (without phone: DECLINED)
          any other card: amount ending in 00 cents         -> APPROVED, otherwise DECLINED
        MIT managed: SUBMITTED, completes after --mit-completion-seconds (sandbox clock) when the rules
        above approve, otherwise expires at expiryDateUtc. MIT sync: the decision at once (CHALLENGE
        counts as DECLINED); the same orderId returns the same order. Amounts must be 10 < cents < 20000.

        Control API: GET /_sandbox/ledger, POST /_sandbox/reset, POST /_sandbox/clock {"advanceSeconds":N},
        GET|POST /_sandbox/faults {"rules":[...]}, POST /_sandbox/orders/{id}/complete|expire|chargeback|
        challenge-passed|challenge-failed, POST /_sandbox/orders (plant an order), /_sandbox/webhook-sink.

        Example:
          flexcharge-sandbox --port 8080 --merchant 11111111-1111-4111-8111-111111111111:key:secret:tok \\
            --latency-ms 200 --fault 'POST /evaluate=503@0.1' --fault 'POST /evaluate=reset-after#1'
          curl -s localhost:8080/v1/oauth2/token -H 'content-type: application/json' \\
            -d '{"AppKey":"key","AppSecret":"secret"}'
        """)

    @Option(help: "Interface to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind (0 = any free port).")
    var port = 8080

    @Option(name: .customLong("merchant"), help: "MID:APP_KEY:APP_SECRET[:TOKENIZATION_KEY]; repeatable.")
    var merchants: [String] = []

    @Option(help: "MIT mode of every merchant: managed or sync.")
    var mitMode: String = "managed"

    @Option(help: "Webhook URL for every merchant (signed with the webhook key).")
    var webhookURL: String?

    @Option(help: "Base64 webhook subscriber key for every merchant.")
    var webhookKey: String = SandboxMerchant.demo.webhookSubscriberKey ?? ""

    @Option(help: "Fixed latency added to every API response, in milliseconds.")
    var latencyMs = 0

    @Option(help: "Random extra latency, uniformly 0...N milliseconds.")
    var jitterMs = 0

    @Option(name: .customLong("fault"), help: """
        ROUTE=KIND[@PROBABILITY|#COUNT]; ROUTE like 'POST /evaluate' or '*'; KIND one of 500, 502, 503, 504, 408, \
        409, 429, reset-before, reset-after, hang, malformed, latency:MS. Repeatable.
        """)
    var faults: [String] = []

    @Option(help: "Seed of the fault/jitter random generator.")
    var seed: UInt64 = 42

    @Option(help: "Validation error shape: flat or nested.")
    var errorShape: String = "flat"

    @Option(help: "Sandbox seconds before a managed MIT order completes.")
    var mitCompletionSeconds = 3600

    @Option(help: """
        Refund deduplication: 'strict' applies every refund that fits the refundable amount (two identical \
        requests refund twice); 'per-order' follows the contract's note that FlexCharge deduplicates refunds per \
        order (the same amount on the same order within 24 h replays the first answer). The worker must never \
        depend on it, so its tests use strict.
        """)
    var refundDedup: String = RefundDeduplication.strict.rawValue

    @Option(help: """
        How GET /orders reads 'query': 'order-id' matches the merchant's order id exactly; 'name' is the \
        documented name search (payer first name, last name or "first last", case-insensitive substring).
        """)
    var orderSearch: String = OrderSearch.orderId.rawValue

    @Option(help: """
        What an order's referenceNumber holds: 'merchant-order-id', or 'generated' (a reference of FlexCharge's \
        own, unrelated to the merchant's order id; the contract does not say which).
        """)
    var referenceNumbers: String = ReferenceNumbers.merchantOrderId.rawValue

    @Flag(help: """
        Play FlexCharge's production environment: webhooks carry IsTestMode: false (the receiver refuses a \
        delivery whose IsTestMode disagrees with the environment of the key that verified it).
        """)
    var playsProduction = false

    @Option(help: "Log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"

    func run() async throws {
        var logger = Logger(label: "flexcharge-sandbox")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let configuration = SandboxConfiguration(
            merchants: try merchants.map(parseMerchant), host: host, port: port,
            latency: .init(fixedMilliseconds: latencyMs, jitterMilliseconds: jitterMs),
            faults: try faults.map(parseFault), randomSeed: seed,
            validationErrorShape: ValidationErrorShape(rawValue: errorShape) ?? .flat,
            managedMITCompletionDelay: .seconds(mitCompletionSeconds),
            refundDeduplication: try Self.parse(refundDedup, option: "--refund-dedup"), isTestMode: !playsProduction,
            orderSearch: try Self.parse(orderSearch, option: "--order-search"),
            referenceNumbers: try Self.parse(referenceNumbers, option: "--reference-numbers"))
        let sandbox = FlexChargeSandbox(configuration: configuration, logger: logger)
        logger.info("starting FlexCharge sandbox", metadata: [
            "address": "\(host):\(port)", "merchants": "\(configuration.merchants.map(\.mid))",
            "faults": "\(configuration.faults.count)",
        ])
        let ticker = SandboxServer.settlementTicker(for: sandbox)
        defer { ticker.cancel() }
        try await SandboxServer.application(for: sandbox, logger: logger).runService()
    }

    private func parseMerchant(_ text: String) throws -> SandboxMerchant {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 || parts.count == 4 else {
            throw ValidationError("--merchant expects MID:APP_KEY:APP_SECRET[:TOKENIZATION_KEY]")
        }
        return SandboxMerchant(mid: parts[0], appKey: parts[1], appSecret: parts[2],
                               tokenizationKey: parts.count == 4 ? parts[3] : "tok-\(parts[0])",
                               mitMode: MITMode(rawValue: mitMode) ?? .managed, webhookURL: webhookURL,
                               webhookSubscriberKey: webhookKey)
    }

    /// A mode named on the command line, or a usage error listing the valid names.
    private static func parse<Mode: RawRepresentable & CaseIterable>(_ text: String, option: String) throws -> Mode
    where Mode.RawValue == String {
        guard let mode = Mode(rawValue: text) else {
            throw ValidationError("\(option) expects \(Mode.allCases.map(\.rawValue).joined(separator: " or ")) (got '\(text)')")
        }
        return mode
    }

    private func parseFault(_ text: String) throws -> FaultRule {
        guard let equals = text.lastIndex(of: "=") else { throw ValidationError("--fault expects ROUTE=KIND[@P|#N]") }
        let route = String(text[..<equals])
        var spec = String(text[text.index(after: equals)...])
        var count: Int?
        var probability: Double?
        if let hash = spec.firstIndex(of: "#") {
            count = Int(spec[spec.index(after: hash)...])
            spec = String(spec[..<hash])
        } else if let at = spec.firstIndex(of: "@") {
            probability = Double(spec[spec.index(after: at)...])
            spec = String(spec[..<at])
        } else {
            probability = 1
        }
        var rule = FaultRule(route: route, kind: .status, count: count, probability: probability)
        switch spec {
        case "429": rule.kind = .rateLimit; rule.retryAfterSeconds = 1
        case "reset-before": rule.kind = .resetBeforeProcessing
        case "reset-after": rule.kind = .resetAfterProcessing
        case "hang": rule.kind = .hang
        case "malformed": rule.kind = .malformedBody
        case let latency where latency.hasPrefix("latency:"):
            rule.kind = .latency
            rule.latencyMilliseconds = Int(latency.dropFirst(8))
        case let status where Int(status) != nil: rule.status = Int(status)
        default: throw ValidationError("unknown fault kind '\(spec)'")
        }
        return rule
    }
}
