import Hummingbird
import Logging
import Prometheus

/// The worker's small HTTP port: `/healthz` (the process answers), `/readyz` (it is running, is
/// not draining, and its database probe got an answer within the last few seconds: 503 with the
/// reason otherwise, see ``WorkerHealth``), `/metrics` (Prometheus text).
public enum HealthServer {
    /// A Hummingbird application to run in the worker's ServiceGroup.
    public static func application(
        host: String, port: Int, health: WorkerHealth, registry: PrometheusCollectorRegistry, logger: Logger
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
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "flexcharge-outbox"),
            logger: logger)
    }
}
