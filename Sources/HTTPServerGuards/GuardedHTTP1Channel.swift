import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Hummingbird's HTTP/1 channel plus a request read deadline: once the first byte of a request arrives, its
/// head and body must be complete within `readTimeout`, or the connection is closed. Hummingbird's own
/// `idleTimeout` closes connections that send nothing; this closes the ones that send slowly (slow loris: a
/// byte every few seconds keeps any idle timer from firing). Header sizes and counts are bounded too.
///
/// Every server of ours that a client outside the process can reach uses it: `serve` (webhooks and card
/// tokenization) and the ops console.
public struct GuardedHTTP1Channel: ServerChildChannel {
    public typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let readTimeout: TimeAmount
    let logger: Logger

    public init(responder: @escaping HTTPChannelHandler.Responder, idleTimeout: TimeAmount, readTimeout: TimeAmount, logger: Logger) {
        base = HTTP1Channel(responder: responder, configuration: .init(
            additionalChannelHandlers: [RequestEndObserver()], idleTimeout: idleTimeout,
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 32 * 1024, maxHeaderFieldCount: 100)))
        self.readTimeout = readTimeout
        self.logger = logger
    }

    public func setup(channel: any NIOCore.Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Runs on the channel's event loop (Hummingbird's child channel initializer): the deadline goes first in
        // the pipeline, where it sees raw bytes; HTTP1Channel then adds the HTTP handlers after it.
        do {
            try channel.pipeline.syncOperations.addHandler(RequestReadDeadline(timeout: readTimeout, logger: self.logger))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Sees the raw bytes: arms the deadline at the first byte of a request, closes the connection when it passes.
final class RequestReadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timeout: TimeAmount
    let logger: Logger
    private var reading = false
    private var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !reading {
            reading = true
            let peer = context.channel.remoteAddress
            let timeout = timeout
            let logger = logger
            scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, self.reading else { return }
                logger.info("connection closed: request not received within the read timeout", metadata: [
                    "peer": "\(peer?.ipAddress ?? "-")", "read_timeout_ms": "\(timeout.nanoseconds / 1_000_000)",
                ])
                self.reading = false
                context.close(promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    /// The request's last part was decoded: nothing more to wait for until the next request's first byte.
    func requestEnded() {
        reading = false
        scheduled?.cancel()
        scheduled = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        requestEnded()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        requestEnded()
    }
}

/// Sees decoded request parts (after Hummingbird's HTTP/1 decoding): tells ``RequestReadDeadline`` when a
/// request is complete.
final class RequestEndObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private var deadline: RequestReadDeadline?

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = try? context.pipeline.syncOperations.handler(type: RequestReadDeadline.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { deadline?.requestEnded() }
        context.fireChannelRead(data)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with ``GuardedHTTP1Channel``'s read deadline, idle timeout and header bounds.
    public static func guardedHTTP1(idleTimeout: Duration, readTimeout: Duration, logger: Logger) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, idleTimeout: TimeAmount(idleTimeout), readTimeout: TimeAmount(readTimeout), logger: logger)
        }
    }
}
