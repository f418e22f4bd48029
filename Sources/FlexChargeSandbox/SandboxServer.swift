import FlexChargeAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Serves a ``FlexChargeSandbox`` over HTTP with Hummingbird: the FlexCharge API under `/v1/` plus the
/// `/_sandbox/` control API.
public enum SandboxServer {
    /// The Hummingbird application for `sandbox`, bound to its configured host and port.
    public static func application(
        for sandbox: FlexChargeSandbox,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: SandboxRequestContext.self)
        APIRoutes(sandbox: sandbox).register(on: router)
        ControlRoutes(sandbox: sandbox).register(on: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(sandbox.configuration.host, port: sandbox.configuration.port),
                                 serverName: "Kestrel"),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Starts `sandbox` in-process (use port `0` in its configuration for a free port) and returns once it listens.
    ///
    /// ```swift
    /// let running = try await SandboxServer.start(FlexChargeSandbox(configuration: .init(port: 0)))
    /// let client = FlexChargeClient(environment: running.environment)
    /// ...
    /// await running.stop()
    /// ```
    public static func start(_ sandbox: FlexChargeSandbox, logger: Logger = Logger(label: "FlexChargeSandbox")) async throws -> RunningSandbox {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = application(for: sandbox, logger: logger) { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        // Run under a ServiceGroup so that stop() is a graceful shutdown: cancelling a NIO server task
        // while connections are being accepted traps in NIOAsyncWriter ("Deinited without calling finish()").
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let server = Task {
            do { try await group.run() } catch { continuation.finish() }
        }
        let ticker = settlementTicker(for: sandbox)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            ticker.cancel()
            server.cancel()
            throw SandboxStartError()
        }
        return RunningSandbox(sandbox: sandbox, host: sandbox.configuration.host, port: port, group: group, server: server, ticker: ticker)
    }
}

extension SandboxServer {
    /// A task that calls ``FlexChargeSandbox/settle()`` every second until cancelled.
    public static func settlementTicker(for sandbox: FlexChargeSandbox) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                sandbox.settle()
            }
        }
    }
}

/// The sandbox could not bind its address.
public struct SandboxStartError: Error, CustomStringConvertible {
    public var description: String { "the sandbox server did not start (address in use?)" }
}

/// A sandbox served in-process; ``stop()`` shuts it down.
public final class RunningSandbox: Sendable {
    /// The simulator state, for direct test control.
    public let sandbox: FlexChargeSandbox
    /// The bound host.
    public let host: String
    /// The bound port.
    public let port: Int
    private let group: ServiceGroup
    private let server: Task<Void, Never>
    private let ticker: Task<Void, Never>

    init(sandbox: FlexChargeSandbox, host: String, port: Int, group: ServiceGroup, server: Task<Void, Never>,
         ticker: Task<Void, Never>) {
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self.group = group
        self.server = server
        self.ticker = ticker
    }

    /// A client environment pointing at this server (`http://host:port/v1/`).
    public var environment: FlexChargeEnvironment { .local(host: host, port: port) }

    /// The URL of the control API root, `http://host:port/_sandbox/`.
    public var controlURL: String { "http://\(host):\(port)/_sandbox/" }

    /// Stops serving (graceful shutdown: requests in progress finish, hanging ones are let go) and waits for the
    /// server to finish; after 5 s the server task is cancelled.
    public func stop() async {
        await group.triggerGracefulShutdown()
        let server = self.server
        let deadline = Task {
            try? await Task.sleep(for: .seconds(5))
            server.cancel()
        }
        await server.value
        deadline.cancel()
        ticker.cancel()
        await ticker.value
    }
}
