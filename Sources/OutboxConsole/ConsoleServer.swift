import HTTPServerGuards
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The ops console's HTTP application (`flexcharge-outbox console`): the sign-in pages, every
/// ``ConsoleArea`` of ``ConsoleAreas/all`` behind sign-in, and `/static/` assets. Middleware, outermost
/// first: security headers (``SecurityHeadersMiddleware``), who is asking (``SessionMiddleware``), then on
/// the areas' routes sign-in and CSRF (``RequireSignInMiddleware``).
public enum ConsoleServer {
    public static func application(
        configuration: ConsoleConfiguration, services: ConsoleServices,
        onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: ConsoleRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: SessionMiddleware(configuration: configuration, services: services))
        router.get("healthz") { _, _ in "ok\n" }
        let assets = Dictionary(([Stylesheet.asset] + ConsoleAreas.all.flatMap { $0.assets }).map { ($0.name, $0) },
                                uniquingKeysWith: { first, _ in first })
        router.get("static/:name") { _, context -> Response in
            guard let name = context.parameters.get("name"), let asset = assets[name] else { throw HTTPError(.notFound) }
            return Response(status: .ok, headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: asset.body)))
        }
        SignInRoutes(configuration: configuration, services: services).register(on: router)
        let pages = router.group().add(middleware: RequireSignInMiddleware())
        let routes = ConsoleRoutes(group: pages, services: services, configuration: configuration)
        for area in ConsoleAreas.all { area.register(routes) }
        let limits = configuration.connections
        return Application(
            router: router,
            server: .guardedHTTP1(idleTimeout: limits.idleTimeout, readTimeout: limits.readTimeout, logger: services.logger),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "flexcharge-outbox-console",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections, logger: services.logger)),
            onServerRunning: onServerRunning, logger: services.logger)
    }

    /// The session cookie: `Secure` (unless configured off for loopback tests), `HttpOnly`,
    /// `SameSite=Strict`, for the whole site, ending with the session's lifetime.
    static func sessionCookie(_ token: String, configuration: ConsoleConfiguration) -> Cookie {
        Cookie(name: ConsoleSessions.cookieName, value: token, maxAge: Int(configuration.sessionLifetime.components.seconds), path: "/",
               secure: configuration.secureCookies, httpOnly: true, sameSite: .strict)
    }

    /// The peer's IP (IPv4-mapped IPv6 as IPv4), "local" for a Unix socket.
    static func peerAddress(_ address: SocketAddress?) -> String {
        guard let ip = address?.ipAddress else { return "local" }
        return ip.hasPrefix("::ffff:") && ip.contains(".") ? String(ip.dropFirst(7)) : ip
    }
}
