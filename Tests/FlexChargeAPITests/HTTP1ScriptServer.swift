@testable import FlexChargeAPI
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Waits (up to 20 s, polling) until `condition` holds.
func eventually(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 20 s")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A loopback server that answers the n-th request (counted over all connections) with `script(n)`, and counts
/// the connections it sees (opened, closed, open at once).
final class ScriptServer: Sendable {
    enum Step: Sendable {
        case write([UInt8])
        case pause(milliseconds: Int64)
        /// Waits until the test opens gate `n` (``openGate(_:)``; at once if it has).
        case gate(Int)
        case close
        case reset
        case hang
    }

    private struct State {
        var requests: [String] = []
        var connections = 0
        var closed = 0
        var peakOpen = 0
        var openGates: Set<Int> = []
        var held: [Int: [@Sendable () -> Void]] = [:]
    }

    private let state = Mutex(State())
    let script: @Sendable (Int) -> [Step]
    private let channel = Mutex<(any Channel)?>(nil)

    var port: Int { channel.withLock { $0?.localAddress?.port ?? 0 } }
    var requests: [String] { state.withLock { $0.requests } }
    var connections: Int { state.withLock { $0.connections } }
    var closedConnections: Int { state.withLock { $0.closed } }
    /// Connections open now, as the server sees them.
    var openConnections: Int { state.withLock { $0.connections - $0.closed } }
    /// The most connections open at once so far.
    var peakOpenConnections: Int { state.withLock { $0.peakOpen } }

    private init(script: @escaping @Sendable (Int) -> [Step]) {
        self.script = script
    }

    /// Runs `body` with a started server and a fresh transport, then stops both.
    static func with(_ script: @escaping @Sendable (Int) -> [Step],
                     configuration: HTTP1Transport.Configuration = .init(connectTimeout: .seconds(10)),
                     _ body: (ScriptServer, HTTP1Transport) async throws -> Void) async throws {
        let server = ScriptServer(script: script)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptConnection(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.channel.withLock { $0 = channel }
        let transport = HTTP1Transport(configuration: configuration)
        do {
            try await body(server, transport)
        } catch {
            await transport.shutdown()
            try? await channel.close()
            throw error
        }
        await transport.shutdown()
        try? await channel.close()
    }

    static func response(status: String = "200 OK", body: String, close: Bool = false) -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n\(body)".utf8)
    }

    /// Lets every request held at gate `gate` go on, and the ones to come pass it.
    func openGate(_ gate: Int = 0) {
        let held = state.withLock { state in
            state.openGates.insert(gate)
            return state.held.removeValue(forKey: gate) ?? []
        }
        for resume in held { resume() }
    }

    /// Requests held at gate `gate` now.
    func heldAt(_ gate: Int) -> Int { state.withLock { $0.held[gate]?.count ?? 0 } }

    /// Runs `resume` now if the gate is open, else when it opens.
    fileprivate func pass(_ gate: Int, _ resume: @escaping @Sendable () -> Void) {
        let open = state.withLock { state in
            let open = state.openGates.contains(gate)
            if !open { state.held[gate, default: []].append(resume) }
            return open
        }
        if open { resume() }
    }

    fileprivate func opened() {
        state.withLock { state in
            state.connections += 1
            state.peakOpen = max(state.peakOpen, state.connections - state.closed)
        }
    }
    fileprivate func closedOne() { state.withLock { $0.closed += 1 } }

    fileprivate func received(_ request: String) -> [Step] {
        let index = state.withLock { state in
            state.requests.append(request)
            return state.requests.count - 1
        }
        return script(index)
    }
}

/// Reads requests (head and Content-Length body) and plays the script's steps for each.
private final class ScriptConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let server: ScriptServer
    var buffer: [UInt8] = []
    var busy = false

    init(server: ScriptServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        server.opened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.closedOne()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        serveNext(context)
    }

    private func serveNext(_ context: ChannelHandlerContext) {
        guard !busy, let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        let head = String(decoding: buffer[..<end.upperBound], as: UTF8.self)
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        guard buffer.count >= end.upperBound + length else { return }
        let request = String(decoding: buffer[..<(end.upperBound + length)], as: UTF8.self)
        buffer.removeFirst(end.upperBound + length)
        busy = true
        play(server.received(request)[...], context)
    }

    private func play(_ steps: ArraySlice<ScriptServer.Step>, _ context: ChannelHandlerContext) {
        guard let step = steps.first else {
            busy = false
            serveNext(context)
            return
        }
        let rest = steps.dropFirst()
        switch step {
        case .write(let bytes):
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
            play(rest, context)
        case .pause(let milliseconds):
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) { [self] in play(rest, context) }
        case .gate(let gate):
            let loop = context.eventLoop
            let resume = NIOLoopBound({ [self] in play(rest, context) }, eventLoop: loop)
            server.pass(gate) { loop.execute { resume.value() } }
        case .close:
            context.close(promise: nil)
        case .reset:
            if let provider = context.channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .hang:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
