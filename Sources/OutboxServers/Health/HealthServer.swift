import Hummingbird
import Logging
import NIOCore
import OutboxEngine

/// The worker's small HTTP port: `/healthz` (the process answers), `/readyz` (it is running, is
/// not draining, and its database probe got an answer within the last few seconds: 503 with the
/// reason otherwise, see ``WorkerHealth``), `/metrics` (Prometheus text).
///
/// The metrics backend is the executable's choice (swift-metrics' rule): the caller bootstraps it and passes
/// `metrics`, which renders the exposition text on each scrape (e.g. `{ registry.emitToBuffer() }`).
public enum HealthServer {
    /// A Hummingbird application to run in the worker's ServiceGroup; `onServerRunning` is called once
    /// the port listens.
    public static func application(
        host: String, port: Int, health: WorkerHealth, metrics: @escaping @Sendable () -> [UInt8], logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            if let reason = health.notReadyReason {
                return Response(
                    status: .serviceUnavailable, body: ResponseBody(byteBuffer: ByteBuffer(string: "not ready: \(reason)\n")))
            }
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ready\n")))
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics())))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "flexcharge-outbox"),
            onServerRunning: onServerRunning, logger: logger)
    }
}
