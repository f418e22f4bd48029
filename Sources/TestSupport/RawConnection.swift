import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A plain TCP connection that writes what it is told and records what comes back and when it closes.
public final class RawConnection: Sendable {
    private final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex<[UInt8]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            received.withLock { $0.append(contentsOf: bytes) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    public let channel: any NIOCore.Channel
    private let recorder: Recorder

    private init(channel: any NIOCore.Channel, recorder: Recorder) {
        self.channel = channel
        self.recorder = recorder
    }

    public static func open(port: Int) async throws -> RawConnection {
        let recorder = Recorder()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(recorder) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, recorder: recorder)
    }

    public var isClosed: Bool { !channel.isActive }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// The bytes received once a whole response head (and its Content-Length body) is there, or nil after `timeout`.
    public func waitForResponse(timeout: Duration) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = String(decoding: recorder.received.withLock { $0 }, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                let length = head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count >= text[..<end.upperBound].utf8.count + length || isClosed { return text }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    public func close() async {
        try? await channel.close()
    }
}

extension RawConnection {
    /// Watches connections until each is closed by the server or `limit` passes, sending each its `drip`
    /// (when not nil) every 300 ms meanwhile, as a slow sender would. Returns when each closed, counted from
    /// the call; a connection missing from the result stayed open.
    public static func closeTimes(_ watched: [(name: String, connection: RawConnection, drip: String?)], within limit: Duration)
        async -> [String: Duration]
    {
        let started = ContinuousClock.now
        var closedAt: [String: Duration] = [:]
        while ContinuousClock.now - started < limit, closedAt.count < watched.count {
            for (name, connection, drip) in watched where closedAt[name] == nil {
                if connection.isClosed {
                    closedAt[name] = ContinuousClock.now - started
                } else if let drip {
                    try? await connection.send(drip)
                }
            }
            try? await Task.sleep(for: .milliseconds(300))
        }
        return closedAt
    }
}
