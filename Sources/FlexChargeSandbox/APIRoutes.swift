import FlexChargeAPI
import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The `/v1/...` routes: faults first, then the engine, then the ledger.
struct APIRoutes: Sendable {
    let sandbox: FlexChargeSandbox

    func register(on router: Router<SandboxRequestContext>) {
        for route in APIRoute.allCases {
            let parts = route.rawValue.split(separator: " ")
            let path = "v1" + parts[1].replacingOccurrences(of: "{id}", with: ":id")
            router.on(RouterPath(path), method: HTTPRequest.Method(String(parts[0]))!) { request, context in
                try await handle(route, request: request, context: context)
            }
        }
    }

    private func handle(_ route: APIRoute, request: Request, context: SandboxRequestContext) async throws -> Response {
        // GETs carry no body (FlexCharge ignores one); not awaiting it saves a suspension per lookup.
        let body = request.method == .get ? ByteBuffer() : try await request.body.collect(upTo: 1 << 20)
        let apiRequest = APIRequest(
            route: route, pathID: context.parameters.get("id"),
            query: request.uri.queryParameters.map { (String($0.key), String($0.value)) },
            authorization: request.headers[.authorization], body: Array(buffer: body))
        sandbox.keepBody(of: apiRequest)
        let (fault, delay) = sandbox.faultAndDelay(for: route) { sandbox.mid(of: apiRequest) }
        switch fault?.kind {
        case .status:
            let status = fault?.status ?? 500
            sandbox.record(route, reply: nil, httpStatus: status, processed: false, fault: .status)
            return Self.response(.problem(status, "Injected fault \(status)"))
        case .rateLimit:
            sandbox.record(route, reply: nil, httpStatus: 429, processed: false, fault: .rateLimit)
            var reply = SandboxReply.problem(429, "Too Many Requests")
            reply.headers = [("Retry-After", String(fault?.retryAfterSeconds ?? 1))]
            return Self.response(reply)
        case .resetBeforeProcessing:
            sandbox.record(route, reply: nil, httpStatus: 0, processed: false, fault: .resetBeforeProcessing)
            try await Self.abort(context.channel)
            return Response(status: .internalServerError)
        case .hang:
            sandbox.record(route, reply: nil, httpStatus: 0, processed: false, fault: .hang)
            await Self.hang(context.channel, milliseconds: fault?.latencyMilliseconds ?? 600_000)
            return Response(status: .gatewayTimeout)
        default:
            break
        }
        let eventLoop = context.channel.eventLoop
        let reply = await sandbox.process(apiRequest) {
            // A timer on the connection's own event loop: `Task.sleep` goes through Dispatch's
            // timer thread and back (about a tenth of the sandbox's CPU at 50 ms latency).
            if delay > .zero { try? await eventLoop.scheduleTask(in: TimeAmount(delay)) {}.futureResult.get() }
        }
        switch fault?.kind {
        case .resetAfterProcessing:
            sandbox.record(route, reply: reply, httpStatus: 0, processed: true, fault: .resetAfterProcessing)
            try? await context.channel.close()
            return Response(status: .internalServerError)
        case .malformedBody:
            sandbox.record(route, reply: reply, httpStatus: 200, processed: true, fault: .malformedBody)
            return Response(status: .ok, headers: [.contentType: "text/html"],
                            body: .init(byteBuffer: ByteBuffer(string: "<html>Unable to parse JSON response</html>")))
        default:
            sandbox.record(route, reply: reply, httpStatus: reply.status, processed: true, fault: fault?.kind)
            return Self.response(reply)
        }
    }

    /// Waits without answering until the connection closes, the server stops, or `milliseconds` pass.
    /// (A client that gives up may only half-close, so the wait is also bounded.)
    private static func hang(_ channel: any Channel, milliseconds: Int) async {
        for _ in 0..<max(1, milliseconds / 50) where channel.isActive && !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Resets the TCP connection (RST instead of FIN) by closing with a zero linger time.
    private static func abort(_ channel: any Channel) async throws {
        if let socket = channel as? any SocketOptionProvider {
            try? await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close()
    }

    static func response(_ reply: SandboxReply) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        for (name, value) in reply.headers {
            if let name = HTTPField.Name(name) { headers[name] = value }
        }
        return Response(status: .init(code: reply.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}
