import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// One HTTP request/response exchange with FlexCharge, classified at the transport level.
///
/// It uses AsyncHTTPClient's delegate API so it knows whether the request had been completely written when a
/// failure happened: a failure before that point is retryable; after it, FlexCharge may have acted (ambiguous).
/// A TCP reset is no exception: a proxy or FlexCharge may reset the connection after acting on the request, and
/// a client cannot tell that reset from one before processing, so it is looked up before anything is sent again.
struct HTTPExchange: Sendable {
    /// A completed exchange: a response head and the full body.
    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var latency: Duration
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
    /// The request for ``url`` and ``method`` already parsed (``FlexChargeClient`` keeps one per fixed route): its
    /// headers and body are replaced by this exchange's. `nil`: parsed here.
    var prepared: HTTPClient.Request? = nil

    /// Sends the request and waits for the full response or a classified ``FlexChargeError``.
    func perform(on httpClient: HTTPClient, timeout: Duration) async throws -> Reply {
        let started = ContinuousClock.now
        var request: HTTPClient.Request
        if let prepared {
            request = prepared
            request.headers = headers
            request.body = body.map { .bytes($0) }
        } else {
            request = try Self.request(url: url, method: method, route: route, headers: headers, body: body)
        }
        let delegate = CollectingDelegate()
        // At most a day, so the nanoseconds below fit an Int64 whatever the configuration says.
        let bounded = min(max(timeout, .zero), .seconds(86_400))
        let deadline = NIODeadline.now() + .nanoseconds(bounded.components.seconds * 1_000_000_000
            + bounded.components.attoseconds / 1_000_000_000)
        let task = httpClient.execute(request: request, delegate: delegate, deadline: deadline, logger: Self.silentLogger)
        do {
            // A cancelled caller (shutdown past its grace period) cancels the request at once; how far it got
            // decides the class as for any other failure (sent: ambiguous, looked up before any resend).
            let reply = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
            return Reply(status: reply.status, headers: reply.headers, body: reply.body,
                         latency: ContinuousClock.now - started)
        } catch {
            throw classify(error, progress: delegate.progress, latency: ContinuousClock.now - started)
        }
    }

    /// Parses `url` into a request (a URL AsyncHTTPClient refuses is a permanent failure).
    static func request(
        url: String, method: HTTPMethod, route: String, headers: HTTPHeaders = [:], body: [UInt8]? = nil
    ) throws(FlexChargeError) -> HTTPClient.Request {
        do {
            return try HTTPClient.Request(url: url, method: method, headers: headers, body: body.map { .bytes($0) })
        } catch {
            throw FlexChargeError(failureClass: .permanent, route: route, message: "invalid request URL")
        }
    }

    /// Turns a transport error into a ``FlexChargeError`` using how far the exchange got.
    private func classify(_ error: any Error, progress: CollectingDelegate.Progress, latency: Duration) -> FlexChargeError {
        let kind = String(describing: error)
        if progress.bodyTooLarge {
            return FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: progress.status,
                                   message: "response body over \(Self.maximumResponseBodyBytes) bytes, not read", latency: latency)
        }
        if progress.receivedHead || error is HTTPParserError {
            // A response (even one that cannot be parsed) means FlexCharge received the request.
            return FlexChargeError(failureClass: .ambiguous, route: route, httpStatus: progress.status,
                                   message: "\(progress.receivedHead ? "response cut off" : "malformed response") (\(kind))",
                                   latency: latency)
        }
        if !progress.sentRequest {
            return FlexChargeError(failureClass: .retryable, route: route,
                                   message: "no response, request not sent in full (\(kind))", latency: latency)
        }
        return FlexChargeError(failureClass: .ambiguous, route: route,
                               message: "request sent, no response (\(kind))", latency: latency)
    }

    /// AsyncHTTPClient's own logs may print request URLs (which carry the tokenization key on `/tokenize`),
    /// so it gets a logger that drops everything.
    static let silentLogger = Logger(label: "FlexChargeAPI.http", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// Collects the response and records how far the exchange got.
private final class CollectingDelegate: HTTPClientResponseDelegate, Sendable {
    struct Progress: Sendable {
        var sentRequest = false
        var receivedHead = false
        var status: Int?
        var headers = HTTPHeaders()
        var body: [UInt8] = []
        var bodyTooLarge = false
    }

    /// Ends the exchange when the body passes ``HTTPExchange/maximumResponseBodyBytes``.
    struct BodyTooLarge: Error {}

    let state = Mutex(Progress())

    var progress: Progress { state.withLock { $0 } }

    func didSendRequest(task: HTTPClient.Task<HTTPExchange.Reply>) {
        state.withLock { $0.sentRequest = true }
    }

    func didReceiveHead(task: HTTPClient.Task<HTTPExchange.Reply>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > HTTPExchange.maximumResponseBodyBytes {
            state.withLock {
                $0.receivedHead = true
                $0.status = Int(head.status.code)
                $0.bodyTooLarge = true
            }
            return task.eventLoop.makeFailedFuture(BodyTooLarge())
        }
        state.withLock {
            $0.receivedHead = true
            $0.status = Int(head.status.code)
            $0.headers = head.headers
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<HTTPExchange.Reply>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = state.withLock { progress in
            guard !progress.bodyTooLarge, progress.body.count + buffer.readableBytes <= HTTPExchange.maximumResponseBodyBytes else {
                progress.bodyTooLarge = true
                progress.body = []
                return false
            }
            progress.body.append(contentsOf: buffer.readableBytesView)
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(BodyTooLarge())
    }

    func didFinishRequest(task: HTTPClient.Task<HTTPExchange.Reply>) throws -> HTTPExchange.Reply {
        if state.withLock({ $0.bodyTooLarge }) { throw BodyTooLarge() }
        return state.withLock { .init(status: $0.status ?? 0, headers: $0.headers, body: $0.body, latency: .zero) }
    }
}
