import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The FlexCharge API client, bound to one ``FlexChargeEnvironment``.
///
/// It caches one bearer token per ``MerchantCredentials`` (single flight, renewed shortly before expiry, renewed
/// once and the call retried once on a 401), classifies every failure as a ``FlexChargeError``, and returns each
/// success with its HTTP status, latency and raw body. It never retries anything else on its own.
///
/// ```swift
/// let client = FlexChargeClient(environment: .local(port: 8080))
/// let answer = try await client.evaluate(body: storedJSON, credentials: credentials)
/// print(answer.body.status, answer.httpStatus, answer.latency)
/// try await client.shutdown()
/// ```
public final class FlexChargeClient: Sendable {
    /// The deployment every call goes to.
    public let environment: FlexChargeEnvironment
    /// Timeouts and token policy.
    public let configuration: FlexChargeClientConfiguration
    let transport: HTTP1Transport
    private let ownsTransport: Bool
    let tokens: AccessTokenCache
    let logger: Logger
    /// The parsed URL of each route without an id or query (its URL never changes), so a transmit or an
    /// evaluate does not parse its URL again.
    private let fixedTargets = Mutex<[String: HTTP1Target]>([:])

    /// Creates a client that shares `transport` (its connections and connect timeout); the caller shuts it down.
    public convenience init(
        environment: FlexChargeEnvironment,
        transport: HTTP1Transport,
        configuration: FlexChargeClientConfiguration = .init(),
        logger: Logger = Logger(label: "FlexChargeAPI")
    ) {
        self.init(environment: environment, transport: transport, owns: false, configuration: configuration, logger: logger)
    }

    /// Creates a client with its own ``HTTP1Transport``; call ``shutdown()`` when done.
    public convenience init(
        environment: FlexChargeEnvironment,
        configuration: FlexChargeClientConfiguration = .init(),
        logger: Logger = Logger(label: "FlexChargeAPI")
    ) {
        let transport = HTTP1Transport(configuration: .init(
            connectTimeout: configuration.connectTimeout,
            maximumConnectionsPerEndpoint: configuration.maximumConnectionsPerHost))
        self.init(environment: environment, transport: transport, owns: true, configuration: configuration, logger: logger)
    }

    private init(environment: FlexChargeEnvironment, transport: HTTP1Transport, owns: Bool,
                 configuration: FlexChargeClientConfiguration, logger: Logger) {
        self.environment = environment
        self.transport = transport
        self.ownsTransport = owns
        self.configuration = configuration
        self.tokens = AccessTokenCache(renewalMargin: configuration.tokenRenewalMargin)
        self.logger = logger
    }

    /// Shuts down the owned transport (does nothing for an injected one).
    public func shutdown() async throws {
        if ownsTransport { await transport.shutdown() }
    }

    // MARK: Calls

    /// `POST /transmit` with a raw JSON object body (sent unchanged).
    public func transmit(body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<TransmitResponse> {
        try await call(.POST, "transmit", body: body, credentials: credentials)
    }

    /// `POST /transmit` with a typed request.
    public func transmit(_ request: TransmitRequest, credentials: MerchantCredentials) async throws -> FlexChargeResponse<TransmitResponse> {
        try await transmit(body: Self.encode(request), credentials: credentials)
    }

    /// `POST /evaluate` with a raw JSON object body (sent unchanged; it must carry `mid` and `idempotencyKey`).
    public func evaluate(body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<EvaluateResponse> {
        try await call(.POST, "evaluate", body: body, credentials: credentials)
    }

    /// `POST /evaluate` with a typed request.
    public func evaluate(_ request: EvaluateRequest, credentials: MerchantCredentials) async throws -> FlexChargeResponse<EvaluateResponse> {
        try await evaluate(body: Self.encode(request), credentials: credentials)
    }

    /// `POST /tokenize?mid=&environment=` with the merchant's tokenization key (no bearer token needed).
    public func tokenize(card: CardToTokenize, credentials: MerchantCredentials) async throws -> FlexChargeResponse<TokenizeResponse> {
        guard let key = credentials.tokenizationKey else {
            throw FlexChargeError(failureClass: .permanent, route: "POST /tokenize", message: "credentials carry no tokenization key")
        }
        return try await call(.POST, "tokenize", query: [("mid", credentials.mid), ("environment", key)],
                              body: Self.encode(card.requestBody), credentials: credentials, authorized: false)
    }

    /// `POST /outcome` (deprecated by FlexCharge; prefer ``order(id:credentials:)``).
    public func outcome(orderSessionKey: String, credentials: MerchantCredentials) async throws -> FlexChargeResponse<OutcomeResponse> {
        try await call(.POST, "outcome", body: Self.encode(["orderSessionKey": orderSessionKey]), credentials: credentials)
    }

    /// `GET /orders/{id}`.
    public func order(id: String, credentials: MerchantCredentials) async throws -> FlexChargeResponse<Order> {
        try await call(.GET, "orders/{id}", id: id, credentials: credentials)
    }

    /// `GET /orders` (paged; filters from/to/mid/status/pageSize/pageNumber).
    public func orders(query: OrdersQuery, credentials: MerchantCredentials) async throws -> FlexChargeResponse<OrdersPage> {
        try await call(.GET, "orders", query: query.queryItems, credentials: credentials)
    }

    /// `POST /orders/{id}/cancel`; an `idempotencyKey` gives a 24 h replay window.
    public func cancel(orderId: String, idempotencyKey: String? = nil, credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await cancel(orderId: orderId, body: Self.encode(["idempotencyKey": idempotencyKey]), credentials: credentials)
    }

    /// `POST /orders/{id}/cancel` with a raw JSON object body (sent unchanged).
    public func cancel(orderId: String, body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await call(.POST, "orders/{id}/cancel", id: orderId, body: body, credentials: credentials)
    }

    /// `POST /orders/{external-order-id}/external-cancel`: cancel by your own order id.
    public func externalCancel(externalOrderId: String, idempotencyKey: String? = nil, credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await externalCancel(externalOrderId: externalOrderId, body: Self.encode(["idempotencyKey": idempotencyKey]),
                                 credentials: credentials)
    }

    /// `POST /orders/{external-order-id}/external-cancel` with a raw JSON object body (sent unchanged).
    public func externalCancel(externalOrderId: String, body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await call(.POST, "orders/{id}/external-cancel", id: externalOrderId, body: body, credentials: credentials)
    }

    /// `POST /orders/{id}/refund`; `amountCents` is sent as exact decimal dollars (`1234` → `12.34`).
    public func refund(orderId: String, amountCents: Int, message: String? = nil, credentials: MerchantCredentials) async throws -> FlexChargeResponse<RefundResponse> {
        try await refund(orderId: orderId, body: Self.encode(RefundRequest(amountCents: amountCents, message: message)),
                         credentials: credentials)
    }

    /// `POST /orders/{id}/refund` with a raw JSON object body (sent unchanged; `amountToRefund` in dollars).
    public func refund(orderId: String, body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<RefundResponse> {
        try await call(.POST, "orders/{id}/refund", id: orderId, body: body, credentials: credentials)
    }

    /// `POST /capture` for an order in `CAPTUREREQUIRED`.
    public func capture(_ request: CaptureRequest, credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await capture(body: Self.encode(request), credentials: credentials)
    }

    /// `POST /capture` with a raw JSON object body (sent unchanged).
    public func capture(body: [UInt8], credentials: MerchantCredentials) async throws -> FlexChargeResponse<OperationResponse> {
        try await call(.POST, "capture", body: body, credentials: credentials)
    }

    // MARK: Plumbing

    /// Performs one API call: token, exchange, one renewal on 401, decoding and classification.
    private func call<Body: Decodable & Sendable>(
        _ method: HTTPMethod, _ pathTemplate: String, id: String? = nil, query: [(String, String)] = [],
        body: [UInt8]? = nil, credentials: MerchantCredentials, authorized: Bool = true
    ) async throws -> FlexChargeResponse<Body> {
        let route = "\(method.rawValue) /\(pathTemplate)"
        var exchange = HTTPExchange(method: method, url: url(pathTemplate, id: id, query: query), route: route,
                                    headers: Self.jsonHeaders(hasBody: body != nil), body: body)
        if id == nil && query.isEmpty {
            exchange.prepared = try fixedTarget(route, url: exchange.url)
        }
        var renewed = false
        var reply: HTTPExchange.Reply
        if authorized {
            var token = try await accessToken(for: credentials)
            exchange.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token.value)")
            reply = try await exchange.perform(on: transport, timeout: configuration.requestTimeout)
            if reply.status == 401 {
                tokens.invalidate(token, for: credentials)
                token = try await accessToken(for: credentials)
                renewed = true
                exchange.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token.value)")
                reply = try await exchange.perform(on: transport, timeout: configuration.requestTimeout)
            }
        } else {
            reply = try await exchange.perform(on: transport, timeout: configuration.requestTimeout)
        }
        logger.debug("FlexCharge call", metadata: [
            "route": "\(route)", "mid": "\(credentials.mid)", "status": "\(reply.status)",
            "latency_ms": "\(reply.latency.components.seconds * 1000 + reply.latency.components.attoseconds / 1_000_000_000_000_000)",
            "renewed_token": "\(renewed)",
        ])
        return try Self.decode(reply, route: route, renewedToken: renewed)
    }

    /// The parsed URL of a fixed route, parsed on its first call.
    private func fixedTarget(_ route: String, url: String) throws(FlexChargeError) -> HTTP1Target {
        if let known = fixedTargets.withLock({ $0[route] }) { return known }
        let target = try HTTPExchange.target(url: url, route: route)
        fixedTargets.withLock { $0[route] = target }
        return target
    }

    /// A valid token for `credentials` from the cache, or from `POST /oauth2/token`.
    private func accessToken(for credentials: MerchantCredentials) async throws -> AccessTokenCache.Token {
        try await tokens.token(for: credentials) { [self] in
            let request = AccessTokenRequest(AppKey: credentials.appKey, AppSecret: credentials.appSecret)
            let answer: FlexChargeResponse<AccessTokenResponse> = try await call(
                .POST, "oauth2/token", body: Self.encode(request), credentials: credentials, authorized: false)
            logger.debug("FlexCharge token obtained", metadata: ["mid": "\(credentials.mid)"])
            return .init(value: answer.body.accessToken,
                         expires: AccessTokenCache.boundedExpiry(millisecondsSince1970: answer.body.expires, now: Date()))
        }
    }

    /// The absolute URL for a path template with its `{id}` filled in (percent-encoded) and query items.
    private func url(_ template: String, id: String?, query: [(String, String)]) -> String {
        var path = template
        if let id {
            var allowed = CharacterSet.urlPathAllowed
            allowed.remove("/")
            path = path.replacingOccurrences(of: "{id}", with: id.addingPercentEncoding(withAllowedCharacters: allowed) ?? id)
        }
        guard !query.isEmpty else { return environment.url(path) }
        var components = URLComponents()
        components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
        let encodedQuery = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        return environment.url(path) + "?" + encodedQuery
    }

    /// Decodes a 2xx reply or throws the classified error for any other status.
    ///
    /// Everything taken from the reply is bounded here: the error message and field errors (``ErrorBody``), the
    /// `Retry-After` delay (``RetryAfter/maximum``), and the decoded body's ids and texts (``CheckedResponse``).
    static func decode<Body: Decodable & Sendable>(_ reply: HTTPExchange.Reply, route: String, renewedToken: Bool) throws -> FlexChargeResponse<Body> {
        guard (200..<300).contains(reply.status) else {
            let parsed = ErrorBody(reply.body)
            var message = parsed.message.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 } ?? "HTTP \(reply.status)"
            var failureClass = FlexChargeError.classify(httpStatus: reply.status, message: message)
            if reply.status == 401 {
                message = renewedToken ? "unauthorized after one token renewal" : "unauthorized"
            } else if route == "POST /oauth2/token", reply.status == 400 {
                message = "bad credentials"
                failureClass = .permanent
            }
            let retryAfter = RetryAfter.read(reply.headers.first(name: "Retry-After"))
            if let note = retryAfter.note { message += " (\(note))" }
            throw FlexChargeError(
                failureClass: failureClass, route: route, httpStatus: reply.status,
                retryAfter: retryAfter.delay,
                fieldErrors: parsed.fieldErrors, message: message, latency: reply.latency, responseBody: reply.body)
        }
        let bytes = reply.body.isEmpty ? Array("{}".utf8) : reply.body
        let decoded: Body
        if let flat = Body.self as? any FlatJSONDecodable.Type, let read = flat.init(flatJSON: bytes) as? Body {
            decoded = read  // the same value JSONDecoder gives, without it (FlatJSON)
        } else {
            do {
                decoded = try FlexChargeJSON.decoder(for: bytes).decode(Body.self, from: Data(bytes))
            } catch {
                throw FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: reply.status,
                                      message: "malformed response body (\(Self.decodingProblem(error)))", latency: reply.latency,
                                      responseBody: reply.body)
            }
        }
        var body = decoded
        if let checkable = decoded as? any CheckedResponse {
            do throws(ResponseProblem) {
                guard let checked = try checkable.checked() as? Body else { throw ResponseProblem(reason: "unexpected type") }
                body = checked
            } catch {
                throw FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: reply.status,
                                      message: "malformed response body (\(error.reason))", latency: reply.latency,
                                      responseBody: reply.body)
            }
        }
        return FlexChargeResponse(body: body, httpStatus: reply.status, latency: reply.latency, rawBody: reply.body,
                                  renewedToken: renewedToken)
    }

    /// A short, safe description of a decoding error: what kind and where, never the offending value.
    private static func decodingProblem(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return SafeText.stored(text.isEmpty ? "body" : text, limit: 80)
        }
        switch error as? DecodingError {
        case .typeMismatch(_, let context): return "wrong type at \(path(context.codingPath))"
        case .valueNotFound(_, let context): return "missing value at \(path(context.codingPath))"
        case .keyNotFound(let key, let context): return "missing \(path(context.codingPath + [key]))"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not JSON" : "unusable value at \(path(context.codingPath))"
        default: return "not JSON"
        }
    }

    private static func jsonHeaders(hasBody: Bool) -> HTTPHeaders {
        var headers: HTTPHeaders = ["Accept": "application/json", "User-Agent": "flexcharge-outbox"]
        if hasBody { headers.add(name: "Content-Type", value: "application/json") }
        return headers
    }

    private static func encode(_ value: some Encodable) -> [UInt8] {
        // Encoding plain model values cannot fail.
        Array((try? FlexChargeJSON.encoder().encode(value)) ?? Data("{}".utf8))
    }
}
