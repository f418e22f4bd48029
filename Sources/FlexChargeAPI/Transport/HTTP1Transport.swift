import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP/1.1 transport of every FlexCharge call: kept-alive connections on SwiftNIO, one request at a time on
/// each, at most ``Configuration/maximumConnectionsPerEndpoint`` per scheme, host and port; TLS (certificates
/// verified) for `https`.
///
/// It replaces async-http-client on this path because the worker spent most of its CPU per event there (request
/// state machines, generic delegates, per-request timers and futures): one exchange here is one buffer written, the
/// answer parsed by ``HTTP1ResponseParser`` on the event loop, and the caller resumed once.
///
/// Every failure says how far the exchange got (``HTTP1Failure/Stage``), which ``HTTPExchange`` turns into a
/// failure class. A call on a kept-alive connection that the server had already closed, found before a byte of
/// the request was written, is moved to a fresh connection once instead of failing.
///
/// The cap is hard (``HTTP1Pool``): connections open at once per endpoint, idle or in use, connects under way
/// included. A call beyond it waits, first come first served, for a connection to be released or closed; while it
/// waits its deadline and its task's cancellation end it as not sent (nothing was written), and ``shutdown()``
/// ends it at once. An idle connection older than ``Configuration/idleTimeout`` is closed rather than reused.
public final class HTTP1Transport: Sendable {
    /// Connection settings.
    public struct Configuration: Sendable {
        /// Time allowed to open a connection (TCP; the TLS handshake counts against the call's deadline).
        public var connectTimeout: Duration
        /// An idle kept-alive connection older than this is closed instead of reused.
        public var idleTimeout: Duration
        /// Connections open at once per scheme, host and port, idle or in use (a hard cap, at least 1): calls
        /// beyond it wait in order for one.
        public var maximumConnectionsPerEndpoint: Int
        /// TLS for `https` (default: the system's trust roots, full certificate and host name verification).
        public var tls: TLSConfiguration

        public init(
            connectTimeout: Duration = .seconds(5), idleTimeout: Duration = .seconds(60),
            maximumConnectionsPerEndpoint: Int = 16, tls: TLSConfiguration = .makeClientConfiguration()
        ) {
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maximumConnectionsPerEndpoint = maximumConnectionsPerEndpoint
            self.tls = tls
        }
    }

    public let configuration: Configuration
    let group: any EventLoopGroup
    private let pool: Mutex<HTTP1Pool>
    private let idleTimeout: TimeAmount
    private let sslContext = Mutex<NIOSSLContext?>(nil)

    /// Creates a transport on NIO's shared event loops; call ``shutdown()`` when done.
    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup.singleton
        self.pool = Mutex(HTTP1Pool(limit: configuration.maximumConnectionsPerEndpoint))
        self.idleTimeout = TimeAmount(configuration.idleTimeout)
    }

    /// Closes every idle connection and fails the calls waiting for one (not sent); calls made afterwards fail as
    /// not sent. Calls in flight finish, and their connections are closed after them.
    public func shutdown() async {
        let (idle, waiting) = pool.withLock { $0.shutDown() }
        for connection in idle {
            connection.close()
        }
        for call in waiting {
            call.fail(HTTP1Failure(stage: .notSent, reason: "client shut down"))
        }
    }

    /// Sends `request` (the encoded bytes of one request) to `endpoint` and reads the response.
    func execute(_ request: ByteBuffer, to endpoint: HTTP1Endpoint, deadline: NIODeadline) async throws(HTTP1Failure) -> HTTP1Response {
        let call = HTTP1Call(request: request, endpoint: endpoint, deadline: deadline)
        do {
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<HTTP1Response, any Error>) in
                    if call.begin(continuation) { dispatch(call, fresh: false) }
                }
            } onCancel: {
                abort(call, .cancelled)
            }
        } catch let failure as HTTP1Failure {
            throw failure
        } catch {
            throw HTTP1Failure(stage: .notSent, reason: "failed")
        }
    }

    /// Cancel or deadline: ends the call (how far it got decides its stage) and takes it out of the queue if it
    /// was waiting there: before its caller resumes, and again after, for a call cancelled while it was being
    /// queued (the queue refuses an ended call, so one of the two finds it).
    private func abort(_ call: HTTP1Call, _ reason: HTTP1Call.Abort) {
        pool.withLock { $0.forget(call) }
        call.abort(reason)
        pool.withLock { $0.forget(call) }
    }

    /// Puts `call` on an idle connection of its endpoint (unless `fresh`), on a new one if the cap allows, or in
    /// the endpoint's queue.
    func dispatch(_ call: HTTP1Call, fresh: Bool) {
        let now = NIODeadline.now()
        var expired: [HTTP1Connection] = []
        let acquired = pool.withLock { $0.acquire(call, fresh: fresh, now: now, idleTimeout: idleTimeout, expired: &expired) }
        for connection in expired { connection.close() }
        switch acquired {
        case .connection(let connection):
            run(call, on: connection)
        case .connect:
            open(for: call)
        case .queued:
            // The only timer of a waiting call: its deadline (the connection's own timer takes over once it runs).
            let scheduled = group.next().scheduleTask(deadline: call.deadline) { [self] in abort(call, .timedOut) }
            call.waiting(until: scheduled)
        case .shutDown:
            call.fail(HTTP1Failure(stage: .notSent, reason: "client shut down"))
        case .ended:
            break
        }
    }

    /// Runs `call` on `connection` (idle, taken out of the pool), or hands the connection on if the call ended.
    private func run(_ call: HTTP1Call, on connection: HTTP1Connection) {
        guard call.attach(connection) else {
            release(connection)
            return
        }
        let loop = connection.loop
        if loop.inEventLoop {
            connection.start(call)
        } else {
            loop.execute { connection.start(call) }
        }
    }

    /// Opens a connection for `call` in the slot reserved for it.
    private func open(for call: HTTP1Call) {
        let endpoint = call.endpoint
        let loop = group.next()
        let connecting: EventLoopFuture<(any Channel, HTTP1Connection)>
        do {
            connecting = try connect(to: endpoint, on: loop, deadline: call.deadline)
        } catch {
            call.fail(HTTP1Failure(stage: .notSent, reason: "TLS setup failed"))
            slotFreed(pool.withLock { $0.connectFailed(endpoint) })
            return
        }
        connecting.whenComplete { [self] result in
            switch result {
            case .success(let (channel, connection)):
                var next: HTTP1Call?
                // On the channel's loop, as its channelInactive: the channel cannot close between these two.
                let active = channel.isActive
                let admitted = pool.withLock { $0.admit(connection, active: active, next: &next) }
                guard admitted else {
                    channel.close(promise: nil)
                    call.fail(HTTP1Failure(stage: .notSent, reason: active ? "client shut down" : "connection closed"))
                    slotFreed(next)
                    return
                }
                if call.attach(connection) {
                    connection.start(call)
                } else {
                    release(connection)
                }
            case .failure(let error):
                call.fail(HTTP1Failure(stage: .notSent, reason: Self.connectFailure(error)))
                slotFreed(pool.withLock { $0.connectFailed(endpoint) })
            }
        }
    }

    /// A slot freed and handed to `waiter` (if any): a new connection for it, unless it ended meanwhile.
    private func slotFreed(_ waiter: HTTP1Call?) {
        guard let waiter else { return }
        if waiter.isFinished {
            // Aborted after it left the queue: the slot goes to the next one.
            slotFreed(pool.withLock { $0.connectFailed(waiter.endpoint) })
        } else {
            open(for: waiter)
        }
    }

    /// Takes back a connection whose exchange ended cleanly: to the first waiting call, else kept idle; closed when
    /// it closed meanwhile or the transport is shut down.
    func release(_ connection: HTTP1Connection) {
        let now = NIODeadline.now()
        switch pool.withLock({ $0.release(connection, now: now) }) {
        case .keptIdle: break
        case .close: connection.close()
        case .handTo(let waiter): run(waiter, on: connection)
        }
    }

    /// Idle connections in the pool, all endpoints.
    var idleConnections: Int { pool.withLock { $0.idleConnections } }
    /// Connections open or connecting, all endpoints (what the cap counts).
    var openConnections: Int { pool.withLock { $0.openConnections } }
    /// Calls waiting for a connection, all endpoints.
    var waitingCalls: Int { pool.withLock { $0.waitingCalls } }

    /// Forgets a connection whose channel closed; its slot goes to the first waiting call, if any.
    func closed(_ connection: HTTP1Connection) {
        slotFreed(pool.withLock { $0.closed(connection) })
    }

    private func connect(to endpoint: HTTP1Endpoint, on loop: any EventLoop, deadline: NIODeadline) throws
        -> EventLoopFuture<(any Channel, HTTP1Connection)> {
        let tls = endpoint.tls ? try context() : nil
        let connection = HTTP1Connection(transport: self, endpoint: endpoint, loop: loop)
        let timeout = min(TimeAmount(configuration.connectTimeout), max(deadline - .now(), .zero))
        let serverName = Self.isIPAddress(endpoint.host) ? nil : endpoint.host
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .map { ($0, connection) }
    }

    /// The TLS context, made on the first `https` connection (it loads the trust roots).
    private func context() throws -> NIOSSLContext {
        try sslContext.withLock { context in
            if let context { return context }
            let made = try NIOSSLContext(configuration: configuration.tls)
            context = made
            return made
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
    }

    /// A fixed description of a connect failure (NIO's own names the host and port).
    private static func connectFailure(_ error: any Error) -> String {
        switch error {
        case let failure as HTTP1Failure: failure.reason
        case ChannelError.connectTimeout: "connect timeout"
        case is NIOConnectionError: "connect failed"
        default: "connect failed (\(type(of: error)))"
        }
    }
}

/// How far a failed exchange got, and a fixed reason (never a URL, header or byte of the answer).
struct HTTP1Failure: Error, Sendable {
    enum Stage: Sendable {
        /// Not a byte of the request is known to have reached the server in full.
        case notSent
        /// The request was written in full; no response head came.
        case sent
        /// A response head came (``status``); the body did not arrive in full.
        case headReceived
        /// The bytes that came back are not an HTTP/1.1 response.
        case malformed
        /// The response body is longer than the limit.
        case tooLarge
    }

    var stage: Stage
    var status: Int? = nil
    var reason: String
}

/// One exchange in flight: the caller's continuation, the connection it runs on, its deadline.
///
/// The continuation is resumed exactly once: by the connection (response or failure, on its event loop), by a
/// failed connect, by ``abort(_:)`` before the call reached a connection, or by the transport's shutdown while it
/// waits for one. Once on a connection, a cancel or the deadline goes through the connection, which alone knows how
/// far the request got. Before that, the connect timeout (never later than the deadline) bounds a connect, and a
/// timer at the deadline (``waiting(until:)``) a wait in the queue.
final class HTTP1Call: Sendable {
    enum Abort: Sendable { case cancelled, timedOut }

    let request: ByteBuffer
    let endpoint: HTTP1Endpoint
    let deadline: NIODeadline

    private struct State {
        var continuation: UnsafeContinuation<HTTP1Response, any Error>?
        var connection: HTTP1Connection?
        var aborted: Abort?
        var finished = false
        var retried = false
        var queueTimer: Scheduled<Void>?
    }

    private let state = Mutex(State())

    init(request: ByteBuffer, endpoint: HTTP1Endpoint, deadline: NIODeadline) {
        self.request = request
        self.endpoint = endpoint
        self.deadline = deadline
    }

    /// Stores the continuation; false (and the continuation resumed) when the call was cancelled already.
    func begin(_ continuation: UnsafeContinuation<HTTP1Response, any Error>) -> Bool {
        let aborted = state.withLock { state -> Abort? in
            if let aborted = state.aborted {
                state.finished = true
                return aborted
            }
            state.continuation = continuation
            return nil
        }
        guard let aborted else { return true }
        continuation.resume(throwing: HTTP1Failure(stage: .notSent, reason: aborted.reason))
        return false
    }

    /// Binds the call to `connection`; false when the call already ended.
    func attach(_ connection: HTTP1Connection) -> Bool {
        state.withLock { state in
            guard !state.finished else { return false }
            state.connection = connection
            return true
        }
    }

    /// Unbinds the call from a connection found closed before the request was written: true (move it to a fresh
    /// connection) the first time, false after that.
    func detachForRetry() -> Bool {
        state.withLock { state in
            guard !state.finished, !state.retried else { return false }
            state.retried = true
            state.connection = nil
            return true
        }
    }

    /// Cancel or deadline: ended here before the call has a connection, else by the connection.
    func abort(_ reason: Abort) {
        enum Next { case nothing, failHere, connection(HTTP1Connection) }
        let next = state.withLock { state -> Next in
            guard !state.finished else { return .nothing }
            if state.aborted == nil { state.aborted = reason }
            return state.connection.map { .connection($0) } ?? .failHere
        }
        switch next {
        case .nothing: break
        case .failHere: fail(HTTP1Failure(stage: .notSent, reason: reason.reason))
        case .connection(let connection):
            // If the connection has not started the call yet, its start sees `aborted` and ends it there.
            if connection.loop.inEventLoop {
                connection.abort(self, reason)
            } else {
                connection.loop.execute { connection.abort(self, reason) }
            }
        }
    }

    /// Why the call was aborted, if it was.
    var aborted: Abort? { state.withLock { $0.aborted } }

    /// The call has been answered (or failed).
    var isFinished: Bool { state.withLock { $0.finished } }

    /// Keeps the deadline timer of a call put in the queue, cancelled when the call ends (at once if it has). A call
    /// queued again (moved off a connection found closed) replaces its earlier timer.
    func waiting(until timer: Scheduled<Void>) {
        let obsolete = state.withLock { state -> Scheduled<Void>? in
            guard !state.finished else { return timer }
            defer { state.queueTimer = timer }
            return state.queueTimer
        }
        obsolete?.cancel()
    }

    func succeed(_ response: HTTP1Response) {
        if let continuation = finish() { continuation.resume(returning: response) }
    }

    func fail(_ failure: HTTP1Failure) {
        if let continuation = finish() { continuation.resume(throwing: failure) }
    }

    private func finish() -> UnsafeContinuation<HTTP1Response, any Error>? {
        let (continuation, timer) = state.withLock { state in
            guard !state.finished else { return (nil, nil) as (UnsafeContinuation<HTTP1Response, any Error>?, Scheduled<Void>?) }
            state.finished = true
            defer {
                state.continuation = nil
                state.connection = nil
                state.queueTimer = nil
            }
            return (state.continuation, state.queueTimer)
        }
        timer?.cancel()
        return continuation
    }
}

extension HTTP1Call.Abort {
    var reason: String {
        switch self {
        case .cancelled: "cancelled"
        case .timedOut: "deadline exceeded"
        }
    }
}

/// One kept-alive connection: the last handler of its channel's pipeline, running one exchange at a time.
///
/// Its state is touched only on the channel's event loop (the handler callbacks, and ``start(_:)`` and
/// ``abort(_:_:)``, which the transport and the call only ever run there); `channel` is set once, when the
/// handler is added, before the connection is handed to anyone.
final class HTTP1Connection: ChannelInboundHandler, NIOScheduledCallbackHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let endpoint: HTTP1Endpoint
    /// The channel's event loop.
    let loop: any EventLoop
    /// Strong: an idle connection in the pool holds its transport until ``HTTP1Transport/shutdown()`` closes it.
    private let transport: HTTP1Transport
    private var context: ChannelHandlerContext?
    private var call: HTTP1Call?
    private var written = false
    private var parser = HTTP1ResponseParser(maximumBodyBytes: HTTPExchange.maximumResponseBodyBytes)
    private var pending: ByteBuffer?
    private var problem: String?
    /// The deadline timer: one per connection, armed for the first call and moved only when a call needs it
    /// sooner; when it fires, it ends the current call if that call's deadline has passed, else re-arms for it.
    /// (A timer scheduled and cancelled per call cost more than the rest of the exchange's bookkeeping.)
    private var timer: NIOScheduledCallback?
    private var timerDeadline: NIODeadline?

    init(transport: HTTP1Transport, endpoint: HTTP1Endpoint, loop: any EventLoop) {
        self.transport = transport
        self.endpoint = endpoint
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Closes the connection (from any thread).
    func close() {
        if loop.inEventLoop {
            context?.close(promise: nil)
        } else {
            loop.execute { self.context?.close(promise: nil) }
        }
    }

    /// Writes the call's request (the call is bound to this connection).
    func start(_ call: HTTP1Call) {
        if let aborted = call.aborted {
            // Cancelled or past its deadline between being bound here and now: nothing was written.
            call.fail(HTTP1Failure(stage: .notSent, reason: aborted.reason))
            transport.release(self)
            return
        }
        guard let context, context.channel.isActive, self.call == nil else {
            // Closed while idle (the server ends kept-alive connections when it likes): nothing was written, so
            // the call moves to a fresh connection, once.
            if call.detachForRetry() {
                transport.dispatch(call, fresh: true)
            } else {
                call.fail(HTTP1Failure(stage: .notSent, reason: "connection closed"))
            }
            return
        }
        self.call = call
        written = false
        problem = nil
        arm(for: call.deadline)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { [self] result in
            guard self.call === call else { return }
            switch result {
            case .success: written = true
            case .failure:
                fail(stage: .notSent, problem ?? "write failed")
                self.context?.close(promise: nil)
            }
        }
        context.writeAndFlush(wrapOutboundOut(call.request), promise: promise)
    }

    /// Ends the call (cancelled or past its deadline) with how far it got, and closes the connection.
    func abort(_ call: HTTP1Call, _ reason: HTTP1Call.Abort) {
        guard self.call === call else { return }
        fail(reason.reason)
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard let call else {
            // Bytes nobody asked for: this connection cannot be trusted with the next request.
            context.close(promise: nil)
            return
        }
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&incoming)
            incoming = earlier
        }
        switch parser.parse(&incoming) {
        case .needMore:
            if incoming.readableBytes > 0 { pending = incoming }
        case .complete(let response):
            let reusable = response.keepAlive && written && incoming.readableBytes == 0
            self.call = nil
            parser.reset()
            if reusable {
                transport.release(self)
            } else {
                context.close(promise: nil)
            }
            call.succeed(response)
        case .malformed(let reason):
            fail(stage: .malformed, reason)
            context.close(promise: nil)
        case .tooLarge:
            fail(stage: .tooLarge, "body over \(HTTPExchange.maximumResponseBodyBytes) bytes")
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        problem = switch error {
        case is NIOSSLError: "TLS failure"
        case let io as IOError where io.errnoCode == 104: "connection reset"
        default: "connection error"
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        transport.closed(self)
        timer?.cancel()
        timer = nil
        if call != nil { fail(problem ?? "connection closed") }
        context.fireChannelInactive()
    }

    private func arm(for deadline: NIODeadline) {
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timer = try? loop.assumeIsolatedUnsafeUnchecked().scheduleCallback(at: deadline, handler: self)
        timerDeadline = timer == nil ? nil : deadline
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        timerDeadline = nil
        guard let call else { return }
        if call.deadline <= .now() {
            abort(call, .timedOut)
        } else {
            arm(for: call.deadline)
        }
    }

    /// Ends the current call with the stage it reached.
    private func fail(_ reason: String) {
        let stage: HTTP1Failure.Stage = parser.status != nil ? .headReceived : (written ? .sent : .notSent)
        fail(stage: stage, reason)
    }

    private func fail(stage: HTTP1Failure.Stage, _ reason: String) {
        guard let call else { return }
        self.call = nil
        pending = nil
        let status = parser.status
        parser.reset()
        call.fail(HTTP1Failure(stage: stage, status: status, reason: reason))
    }
}
