import Hummingbird
import OutboxEngine
import Metrics

/// Counts `serve`'s requests and times them, for Prometheus (the `--metrics-port`):
///
///     flexcharge_outbox_serve_requests_total{route, status}        requests answered, by route and HTTP status
///     flexcharge_outbox_serve_request_duration_seconds{route}      time to the response head, by route
///
/// The labels are ones request text cannot multiply (this port faces the internet): `route` is one of ours,
/// named before routing (an ``IntegrationRoute``, or `other` for every other path and method), and
/// `status` a number from 100 to 599. Hummingbird's own MetricsMiddleware labels the request's method, which
/// a client may make up without end, so it is not used here. (A request the HTTP parser refuses, such as
/// one with a method it does not know, is answered 400 before any route and is not counted.)
struct RequestMetrics<Context: RequestContext>: RouterMiddleware {
    /// The route label of a request: ``IntegrationRoute``'s names, or `other`, whatever the path.
    static func route(method: HTTPRequest.Method, path: String) -> String {
        IntegrationRoute(method: method, path: path)?.rawValue ?? "other"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = Self.route(method: request.method, path: request.uri.path)
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(route, status: response.status.code, since: started)
            return response
        } catch {
            record(route, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: started)
            throw error
        }
    }

    private func record(_ route: String, status: Int, since started: ContinuousClock.Instant) {
        let status = (100...599).contains(status) ? status : 500
        MetricHandles.counter("flexcharge_outbox_serve_requests_total", [("route", route), ("status", String(status))]).increment()
        let elapsed = ContinuousClock.now - started
        MetricHandles.timer("flexcharge_outbox_serve_request_duration_seconds", [("route", route)]).recordNanoseconds(
            elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
