import Crypto
import FlexChargeAPI
import Foundation
import HTTPServerGuards
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LibPQ
import Logging
import NIOCore
import OutboxEngine

/// The request context of ``IntegrationServer``: it keeps the peer address (loopback check).
struct IntegrationRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// What `flexcharge-outbox serve` offers the gateway and FlexCharge:
/// - `POST /webhooks/flexcharge?merchant=<merchant_id>`: FlexCharge's webhooks (``WebhookReceiver``);
/// - `POST /v1/tokenize`: card tokenization for the gateway (``CardTokenizer``), authenticated with
///   `Authorization: Bearer <FLEXCHARGE_TOKENIZE_SECRET>`, refused from non-loopback peers unless
///   `allowRemotePlainHTTP` (the service speaks plain HTTP: put it behind TLS for other peers);
/// - `GET /healthz`.
///
/// It is reachable by anyone who can reach the port, so every request is bounded (``Limits``): a request must
/// arrive within `readTimeout` of its first byte, an idle connection closes after `idleTimeout`, at most
/// `maximumConnections` are open (more wait in the listen backlog), both POST routes are rate limited per
/// client address and globally (429 with `Retry-After`), database work shares a pool of sessions, and
/// request-supplied text reaches log lines only through ``SafeText/forLog(_:limit:)``.
public enum IntegrationServer {
    /// The bounds of `serve`; the defaults are those of the command's options.
    public struct Limits: Sendable {
        /// Time from a request's first byte to its last (head and body). Slow senders are cut off.
        public var readTimeout: Duration
        /// Time a connection may sit without a request before it is closed.
        public var idleTimeout: Duration
        /// Connections served at once; more wait in the kernel's listen backlog (`backlog`), then are refused.
        public var maximumConnections: Int
        public var backlog: Int
        /// `POST /v1/tokenize` per client address, and for all clients together.
        public var tokenizePerClient: RateLimit
        public var tokenizeGlobal: RateLimit
        /// `POST /webhooks/flexcharge` (counted before the signature is checked) per address and in total.
        public var webhookPerClient: RateLimit
        public var webhookGlobal: RateLimit
        /// How long a request waits for a free database session before it is answered 503.
        public var databaseWait: Duration

        public init(
            readTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60), maximumConnections: Int = 256,
            backlog: Int = 256,
            tokenizePerClient: RateLimit = .init(perSecond: 10, burst: 20), tokenizeGlobal: RateLimit = .init(perSecond: 100, burst: 200),
            webhookPerClient: RateLimit = .init(perSecond: 20, burst: 100), webhookGlobal: RateLimit = .init(perSecond: 200, burst: 400),
            databaseWait: Duration = .seconds(5)
        ) {
            self.readTimeout = readTimeout
            self.idleTimeout = idleTimeout
            self.maximumConnections = max(1, maximumConnections)
            self.backlog = max(1, backlog)
            self.tokenizePerClient = tokenizePerClient
            self.tokenizeGlobal = tokenizeGlobal
            self.webhookPerClient = webhookPerClient
            self.webhookGlobal = webhookGlobal
            self.databaseWait = databaseWait
        }
    }

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The shared secret of `/v1/tokenize`; `nil` disables the endpoint (503).
        public var tokenizeSecret: String?
        /// Accept `/v1/tokenize` over plain HTTP from peers that are not loopback (a TLS-terminating
        /// proxy on another host, an internal network you trust).
        public var allowRemotePlainHTTP: Bool
        /// The `Host` FlexCharge signs, when a proxy in front rewrites it; else the request's own.
        public var publicHost: String?
        public var clockSkew: Duration
        public var limits: Limits

        public init(host: String = "127.0.0.1", port: Int = 8081, tokenizeSecret: String? = nil,
                    allowRemotePlainHTTP: Bool = false, publicHost: String? = nil, clockSkew: Duration = .seconds(300),
                    limits: Limits = Limits()) {
            self.host = host
            self.port = port
            self.tokenizeSecret = tokenizeSecret
            self.allowRemotePlainHTTP = allowRemotePlainHTTP
            self.publicHost = publicHost
            self.clockSkew = clockSkew
            self.limits = limits
        }
    }

    /// The largest bodies read: a webhook, a tokenize request.
    static let maximumWebhookBytes = 256 * 1024, maximumTokenizeBytes = 16 * 1024
    /// The longest `merchant` query parameter accepted (merchant ids are at most 128 characters).
    static let maximumMerchantIDLength = 128

    /// The tokenize request body. `card` is the only place card data appears; it is sent to
    /// FlexCharge and dropped. The sense key comes beside the card, not in it.
    struct TokenizeRequest: Decodable {
        var merchantId: String
        var channel: String
        var origin: String?
        var site: String?
        var senseKey: String?
        var card: CardToTokenize
    }

    /// What the routes call: the webhook receiver and the tokenizer, each run with a database session.
    struct Services: Sendable {
        var receiveWebhook: @Sendable (_ merchantID: String?, _ host: String?, _ headers: [String: String], _ body: [UInt8]) async
            -> (status: Int, message: String)
        var tokenize: @Sendable (_ card: CardToTokenize, _ merchantID: String, _ channel: String, _ origin: String?, _ site: String?) async throws
            -> TokenizedCard
    }

    /// The server with a pool of database sessions: each request leases one for its database work (waiting at
    /// most `limits.databaseWait`, else 503) and builds its receiver or tokenizer on it.
    public static func application(
        configuration: Configuration, pool: PGPool,
        webhooks: @escaping @Sendable (PGSession) -> WebhookReceiver,
        tokenizer: @escaping @Sendable (PGSession) -> CardTokenizer,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let services = Services(
            receiveWebhook: { merchantID, host, headers, body in
                do {
                    let reply = try await pool.withSession { session in
                        await webhooks(session).receive(merchantID: merchantID, host: host, headers: headers, body: body)
                    }
                    return (reply.status, reply.message)
                } catch {
                    logger.warning("webhook: no database session", metadata: ["error": "\(error)"])
                    return (503, "temporarily unavailable")
                }
            },
            tokenize: { card, merchantID, channel, origin, site in
                do {
                    return try await pool.withSession { session in
                        try await tokenizer(session).tokenize(card, merchantID: merchantID, channel: channel, origin: origin, site: site)
                    }
                } catch let error as TokenizeError {
                    throw error
                } catch {
                    logger.warning("tokenize: no database session", metadata: ["error": "\(error)"])
                    throw TokenizeError(.unavailable, "temporarily unavailable")
                }
            })
        return application(configuration: configuration, services: services, logger: logger, onServerRunning: onServerRunning)
    }

    /// The server with one receiver and one tokenizer (one database session for every request: tests).
    static func application(
        configuration: Configuration, webhooks: WebhookReceiver, tokenizer: CardTokenizer, logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let services = Services(
            receiveWebhook: {
                let reply = await webhooks.receive(merchantID: $0, host: $1, headers: $2, body: $3)
                return (reply.status, reply.message)
            },
            tokenize: { try await tokenizer.tokenize($0, merchantID: $1, channel: $2, origin: $3, site: $4) })
        return application(configuration: configuration, services: services, logger: logger, onServerRunning: onServerRunning)
    }

    static func application(
        configuration: Configuration, services: Services, logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void
    ) -> some ApplicationProtocol {
        let limits = configuration.limits
        let tokenizeLimiter = RateLimiter(perClient: limits.tokenizePerClient, global: limits.tokenizeGlobal)
        let webhookLimiter = RateLimiter(perClient: limits.webhookPerClient, global: limits.webhookGlobal)
        let router = Router(context: IntegrationRequestContext.self)
        router.add(middleware: RequestMetrics())
        router.on(RouterPath(IntegrationRoute.healthz.path), method: IntegrationRoute.healthz.method) { _, _ in "ok\n" }
        router.on(RouterPath(IntegrationRoute.webhook.path), method: IntegrationRoute.webhook.method) { request, context -> Response in
            if let wait = webhookLimiter.admit(client: clientKey(context.remoteAddress)) {
                return tooManyRequests(wait, route: .webhook, peer: context.remoteAddress, logger: logger, json: false)
            }
            let merchantID = request.uri.queryParameters.get("merchant")
            if let merchantID, !SafeText.isIdentifier(merchantID, limit: maximumMerchantIDLength) {
                logger.warning("webhook refused: unusable merchant parameter", metadata: [
                    "merchant": "\(SafeText.forLog(merchantID))", "peer": "\(clientKey(context.remoteAddress))",
                ])
                return text(400, "bad merchant parameter\n")
            }
            var request = request
            let body = try await request.collectBody(upTo: maximumWebhookBytes)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let reply = await services.receiveWebhook(
                merchantID, configuration.publicHost ?? request.head.authority ?? headers["host"], headers, Array(buffer: body))
            var response = text(reply.status, reply.message + "\n")
            if reply.status == 503 { response.headers[.retryAfter] = "1" }
            return response
        }
        router.on(RouterPath(IntegrationRoute.tokenize.path), method: IntegrationRoute.tokenize.method) { request, context -> Response in
            if let wait = tokenizeLimiter.admit(client: clientKey(context.remoteAddress)) {
                return tooManyRequests(wait, route: .tokenize, peer: context.remoteAddress, logger: logger, json: true)
            }
            if !configuration.allowRemotePlainHTTP && !isLoopback(context.remoteAddress) {
                logger.warning("tokenize refused: plain HTTP from a non-loopback peer",
                               metadata: ["peer": "\(clientKey(context.remoteAddress))"])
                return json(403, ["error": "plain HTTP is accepted from loopback only (see --allow-remote-plain-http)"])
            }
            guard let secret = configuration.tokenizeSecret else {
                return json(503, ["error": "tokenization is not configured (FLEXCHARGE_TOKENIZE_SECRET)"])
            }
            guard let presented = bearer(request.headers[.authorization]), constantTimeEqual(presented, secret) else {
                logger.warning("tokenize refused: bad or missing bearer secret", metadata: ["peer": "\(clientKey(context.remoteAddress))"])
                return json(401, ["error": "unauthorized"])
            }
            var request = request
            let body = try await request.collectBody(upTo: maximumTokenizeBytes)
            guard let parsed = try? JSONDecoder().decode(TokenizeRequest.self, from: Data(Array(buffer: body))) else {
                // Never echo the body: it may hold a card number.
                return json(400, ["error": "body must be {merchantId, channel, origin, site, card: {firstName, lastName, number, month, year, verificationValue}}"])
            }
            guard SafeText.isIdentifier(parsed.merchantId, limit: maximumMerchantIDLength) else {
                return json(400, ["error": "merchantId must be 1 to \(maximumMerchantIDLength) printable characters"])
            }
            var card = parsed.card
            card.senseKey = parsed.senseKey
            do {
                let vaulted = try await services.tokenize(card, parsed.merchantId, parsed.channel, parsed.origin, parsed.site)
                return json(200, ["token": vaulted.token, "environment": vaulted.environment, "lastFour": vaulted.lastFour])
            } catch let error as TokenizeError {
                let status = switch error.kind {
                case .unknownMerchant: 404
                case .channelOff, .notConfigured: 409
                case .invalidRequest, .refused: 422
                case .unavailable: 503
                }
                var response = json(status, ["error": error.description])
                if status == 503 { response.headers[.retryAfter] = "1" }
                return response
            } catch {
                return json(503, ["error": "temporarily unavailable"])
            }
        }
        return Application(
            router: router, server: .guardedHTTP1(idleTimeout: limits.idleTimeout, readTimeout: limits.readTimeout, logger: logger),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "flexcharge-outbox",
                                 backlog: limits.backlog,
                                 availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections, logger: logger)),
            onServerRunning: onServerRunning, logger: logger)
    }

    /// The address a rate limit counts against: the peer's IP (a Unix socket peer has none).
    static func clientKey(_ address: SocketAddress?) -> String {
        address?.ipAddress ?? "local"
    }

    private static func tooManyRequests(_ wait: Duration, route: IntegrationRoute, peer: SocketAddress?, logger: Logger, json asJSON: Bool) -> Response {
        let seconds = max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
        logger.notice("rate limited", metadata: ["route": "\(route.rawValue)", "peer": "\(clientKey(peer))", "retry_after_s": "\(seconds)"])
        var response = asJSON ? json(429, ["error": "too many requests; retry after \(seconds) s"]) : text(429, "too many requests\n")
        response.headers[.retryAfter] = String(seconds)
        return response
    }

    /// True for 127.0.0.0/8, ::1, IPv4-mapped loopback and Unix sockets.
    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let address else { return false }
        if case .unixDomainSocket = address { return true }
        guard let ip = address.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }

    static func bearer(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    /// Compares digests, so the time taken says nothing about the secret or its length.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let key = SymmetricKey(size: .bits256)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(a.utf8), using: key)
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(b.utf8), using: key)
    }

    private static func text(_ status: Int, _ message: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: message)))
    }

    private static func json(_ status: Int, _ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: .init(code: status),
                        headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
