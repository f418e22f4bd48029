import Hummingbird
import Logging
import NIOCore
import OutboxEngine

/// The small HTTP port of a long-running process, apart from any port clients use: `/healthz` (the process
/// answers), `/readyz` (200, or 503 with the reason `notReadyReason` gives: the worker's is ``WorkerHealth``'s,
/// running, not draining, and its database probe answered within the last few seconds), `/metrics`
/// (Prometheus text). The worker's `--http-port`, and `serve`'s `--metrics-port`.
///
/// The metrics backend is the executable's choice (swift-metrics' rule): the caller bootstraps it and passes
/// `metrics`, which renders the exposition text on each scrape (e.g. `{ registry.emitToBuffer() }`).
public enum HealthServer {
    /// A Hummingbird application to run in the process's ServiceGroup; `onServerRunning` is called once
    /// the port listens.
    public static func application(
        host: String, port: Int, notReadyReason: @escaping @Sendable () -> String?, metrics: @escaping @Sendable () -> [UInt8],
        logger: Logger,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            if let reason = notReadyReason() {
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
