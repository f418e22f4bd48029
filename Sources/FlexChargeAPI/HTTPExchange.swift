import NIOCore
import NIOHTTP1

/// One HTTP request/response exchange with FlexCharge, classified at the transport level.
///
/// ``HTTP1Transport`` reports how far a failed exchange got, which decides the class: a failure before the request
/// had been completely written is retryable; after it, FlexCharge may have acted (ambiguous). A TCP reset is no
/// exception: a proxy or FlexCharge may reset the connection after acting on the request, and a client cannot tell
/// that reset from one before processing, so it is looked up before anything is sent again.
struct HTTPExchange: Sendable {
    /// A completed exchange: a response head and the full body.
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
        var latency: Duration
        private var fields: Fields

        /// The header fields (read from the response's head on first use).
        var headers: HTTPHeaders {
            get {
                switch fields {
                case .parsed(let headers): headers
                case .raw(let head): head.headers
                }
            }
            set { fields = .parsed(newValue) }
        }

        private enum Fields: Sendable {
            case parsed(HTTPHeaders)
            case raw(HTTP1Head)
        }

        init(status: Int, headers: HTTPHeaders, body: [UInt8], latency: Duration) {
            self.status = status
            self.body = body
            self.latency = latency
            fields = .parsed(headers)
        }

        init(_ response: HTTP1Response, latency: Duration) {
            status = response.status
            body = response.body
            self.latency = latency
            fields = .raw(response.head)
        }
    }

    /// The largest response body read into memory (1 MiB; a page of 100 orders is about 50 KiB). A longer
    /// body ends the exchange as a cut-off response (ambiguous).
    static let maximumResponseBodyBytes = 1 << 20

    var method: HTTPMethod
    var url: String
    /// Route label for errors and logs; never contains query values.
    var route: String
    var headers: HTTPHeaders
    var body: [UInt8]?
    /// ``url`` already parsed (``FlexChargeClient`` keeps one per fixed route). `nil`: parsed here.
    var prepared: HTTP1Target? = nil

    /// Sends the request and waits for the full response or a classified ``FlexChargeError``.
    func perform(on transport: HTTP1Transport, timeout: Duration) async throws(FlexChargeError) -> Reply {
        let started = ContinuousClock.now
        let target: HTTP1Target
        if let prepared { target = prepared } else { target = try Self.target(url: url, route: route) }
        guard let request = target.encode(method: method, headers: headers, body: body) else {
            throw FlexChargeError(failureClass: .retryable, route: route,
                                  message: "no response, request not sent in full (invalid header)", latency: .zero)
        }
        // At most a day, so the nanoseconds below fit an Int64 whatever the configuration says.
        let bounded = min(max(timeout, .zero), .seconds(86_400))
        let deadline = NIODeadline.now() + .nanoseconds(bounded.components.seconds * 1_000_000_000
            + bounded.components.attoseconds / 1_000_000_000)
        do throws(HTTP1Failure) {
            // A cancelled caller (shutdown past its grace period) cancels the request at once; how far it got
            // decides the class as for any other failure (sent: ambiguous, looked up before any resend).
            let response = try await transport.execute(request, to: target.endpoint, deadline: deadline)
            return Reply(response, latency: ContinuousClock.now - started)
        } catch {
            throw classify(error, latency: ContinuousClock.now - started)
        }
    }

    /// Parses `url` (a URL the transport refuses is a permanent failure).
    static func target(url: String, route: String) throws(FlexChargeError) -> HTTP1Target {
        guard let target = HTTP1Target(url: url) else {
            throw FlexChargeError(failureClass: .permanent, route: route, message: "invalid request URL")
        }
        return target
    }

    /// Turns a transport failure into a ``FlexChargeError`` using how far the exchange got.
    private func classify(_ failure: HTTP1Failure, latency: Duration) -> FlexChargeError {
        switch failure.stage {
        case .tooLarge:
            FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: failure.status,
                            message: "response body over \(Self.maximumResponseBodyBytes) bytes, not read", latency: latency)
        case .headReceived:
            // A response (even one that cannot be parsed) means FlexCharge received the request.
            FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: failure.status,
                            message: "response cut off (\(failure.reason))", latency: latency)
        case .malformed:
            FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: failure.status,
                            message: "malformed response (\(failure.reason))", latency: latency)
        case .notSent:
            FlexChargeError(failureClass: .retryable, route: route,
                            message: "no response, request not sent in full (\(failure.reason))", latency: latency)
        case .sent:
            FlexChargeError(failureClass: .ambiguous, route: route,
                            message: "request sent, no response (\(failure.reason))", latency: latency)
        }
    }
}
