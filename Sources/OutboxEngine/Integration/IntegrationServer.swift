import Crypto
import FlexChargeAPI
import Foundation
import HTTPTypes
import Hummingbird
import LibPQ
import Logging
import NIOCore

/// The request context of ``IntegrationServer``: it keeps the peer address (loopback check).
public struct IntegrationRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
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
public enum IntegrationServer {
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

        public init(host: String = "127.0.0.1", port: Int = 8081, tokenizeSecret: String? = nil,
                    allowRemotePlainHTTP: Bool = false, publicHost: String? = nil, clockSkew: Duration = .seconds(300)) {
            self.host = host
            self.port = port
            self.tokenizeSecret = tokenizeSecret
            self.allowRemotePlainHTTP = allowRemotePlainHTTP
            self.publicHost = publicHost
            self.clockSkew = clockSkew
        }
    }

    /// The tokenize request body. `card` is the only place card data appears; it is sent to
    /// FlexCharge and dropped.
    struct TokenizeRequest: Decodable {
        struct Card: Decodable {
            var firstName: String
            var lastName: String
            var number: String
            var month: String
            var year: String
            var verificationValue: String?
            var email: String?
        }

        var merchantId: String
        var channel: String
        var origin: String?
        var site: String?
        var senseKey: String?
        var card: Card
    }

    public static func application(
        configuration: Configuration, webhooks: WebhookReceiver, tokenizer: CardTokenizer, logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: IntegrationRequestContext.self)
        router.get("healthz") { _, _ in "ok\n" }
        router.post("webhooks/flexcharge") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 256 * 1024)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let reply = await webhooks.receive(
                merchantID: request.uri.queryParameters.get("merchant"),
                host: configuration.publicHost ?? request.head.authority ?? headers["host"], headers: headers,
                body: Array(buffer: body))
            return text(reply.status, reply.message + "\n")
        }
        router.post("v1/tokenize") { request, context -> Response in
            if !configuration.allowRemotePlainHTTP && !isLoopback(context.remoteAddress) {
                logger.warning("tokenize refused: plain HTTP from a non-loopback peer")
                return json(403, ["error": "plain HTTP is accepted from loopback only (see --allow-remote-plain-http)"])
            }
            guard let secret = configuration.tokenizeSecret else {
                return json(503, ["error": "tokenization is not configured (FLEXCHARGE_TOKENIZE_SECRET)"])
            }
            guard let presented = bearer(request.headers[.authorization]), constantTimeEqual(presented, secret) else {
                logger.warning("tokenize refused: bad or missing bearer secret")
                return json(401, ["error": "unauthorized"])
            }
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            guard let parsed = try? JSONDecoder().decode(TokenizeRequest.self, from: Data(Array(buffer: body))) else {
                // Never echo the body: it may hold a card number.
                return json(400, ["error": "body must be {merchantId, channel, origin, site, card: {firstName, lastName, number, month, year, verificationValue}}"])
            }
            let card = CardToTokenize(
                firstName: parsed.card.firstName, lastName: parsed.card.lastName, number: parsed.card.number,
                month: parsed.card.month, year: parsed.card.year, verificationValue: parsed.card.verificationValue,
                email: parsed.card.email, senseKey: parsed.senseKey)
            do {
                let vaulted = try await tokenizer.tokenize(
                    card, merchantID: parsed.merchantId, channel: parsed.channel, origin: parsed.origin, site: parsed.site)
                return json(200, ["token": vaulted.token, "environment": vaulted.environment, "lastFour": vaulted.lastFour])
            } catch let error as TokenizeError {
                let status = switch error.kind {
                case .unknownMerchant: 404
                case .channelOff, .notConfigured: 409
                case .invalidRequest, .refused: 422
                case .unavailable: 503
                }
                return json(status, ["error": error.description])
            } catch {
                return json(503, ["error": "temporarily unavailable"])
            }
        }
        return Application(
            router: router, configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                 serverName: "flexcharge-outbox"),
            onServerRunning: onServerRunning, logger: logger)
    }

    /// True for 127.0.0.0/8, ::1, IPv4-mapped loopback and Unix sockets.
    public static func isLoopback(_ address: SocketAddress?) -> Bool {
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
