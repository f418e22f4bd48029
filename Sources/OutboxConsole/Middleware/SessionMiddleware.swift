import Foundation
import HTTPTypes
import Hummingbird
import LibPQ
import Logging
import NIOCore

/// Finds who is asking, on every request. The client address is the peer's, or, when the peer is a
/// trusted proxy, the last address of its `X-Forwarded-For` (the one the proxy saw). The user is named by
/// the proxy's SSO header when it is configured and the peer is
/// a trusted proxy (the named account must exist and be enabled; a session is started for it so its
/// forms get a CSRF token), else the session cookie. Sets `context.user` and `context.csrfToken`, or
/// leaves them empty. A request with an SSO header from any other peer is answered as if it had none,
/// and logged.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = ConsoleRequestContext

    let configuration: ConsoleConfiguration
    let services: ConsoleServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.secureCookies = configuration.secureCookies
        let peer = ConsoleServer.peerAddress(context.remoteAddress)
        let fromProxy = configuration.trustedProxies.contains(peer)
        context.clientAddress = peer
        if fromProxy, let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!]?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
           !forwarded.isEmpty, forwarded.count <= 64 {
            context.clientAddress = forwarded
        }
        guard !request.uri.path.hasPrefix("/static/") else { return try await next(request, context) }
        let idle = configuration.sessionIdleTimeout
        let token = request.cookies[ConsoleSessions.cookieName]?.value ?? ""
        var active = token.isEmpty ? nil : try await services.withSession {
            try await ConsoleSessions(session: $0).active(token: token, idleTimeout: idle)
        }
        var newCookie: Cookie?
        if let header = configuration.ssoHeader.flatMap({ HTTPField.Name($0) }), let name = request.headers[header] {
            if fromProxy {
                if active?.user.name != name {
                    let started = try await startSSOSession(name: name, address: context.clientAddress)
                    active = started?.active
                    newCookie = started.map { ConsoleServer.sessionCookie($0.token, configuration: configuration) }
                }
            } else {
                services.logger.warning("console: SSO header ignored from an untrusted peer",
                                        metadata: ["peer": "\(peer)"])
            }
        }
        if let active {
            context.user = active.user
            context.csrfToken = active.csrfToken
            context.sessionID = active.id
        }
        var response = try await next(request, context)
        if let newCookie { response.setCookie(newCookie) }
        return response
    }

    /// A session for the SSO header's account, if it exists and is enabled; nil otherwise (logged).
    private func startSSOSession(name: String, address: String) async throws -> (token: String, active: ConsoleSessions.Active)? {
        guard ConsoleAccounts.validName(name) else { return nil }
        let lifetime = configuration.sessionLifetime, idle = configuration.sessionIdleTimeout
        let started: (String, ConsoleSessions.Active)? = try await services.withSession { session in
            guard let row = try await session.query(
                "SELECT id FROM flexcharge.console_accounts WHERE name = $1 AND disabled_at IS NULL", [name]).first
            else { return nil }
            let sessions = ConsoleSessions(session: session)
            let token = try await sessions.create(accountID: try row.decode("id"), address: address, method: "sso", lifetime: lifetime)
            try await session.withTransaction { tx in
                try ConsoleAccounts.audit(tx, actor: "console:\(name)", action: "sign-in", subject: name, old: nil, new: "sso from \(address)")
            }
            guard let active = try await sessions.active(token: token, idleTimeout: idle) else { return nil }
            return (token, active)
        }
        if started == nil {
            services.logger.notice("console: SSO header names no enabled account", metadata: ["account": "\(name.prefix(64))"])
        }
        return started.map { (token: $0.0, active: $0.1) }
    }
}
