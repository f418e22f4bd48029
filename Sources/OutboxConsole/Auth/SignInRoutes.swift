import Foundation
import Hummingbird
import LibPQ
import Logging

/// `GET /login` (the form), `POST /login` (``SignIn``) and `POST /logout`. The sign-in form has no
/// session yet, so its CSRF token is a double submit: a random cookie and the same value in the form.
struct SignInRoutes: Sendable {
    let configuration: ConsoleConfiguration
    let services: ConsoleServices

    func register(on router: Router<ConsoleRequestContext>) {
        router.get("login") { request, context -> Response in
            if context.user != nil { return try ConsoleRedirect(to: next(request.uri.queryParameters.get("next"))).response(from: request, context: context) }
            return try form(request, context, next: request.uri.queryParameters.get("next"))
        }
        router.post("login") { request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: RequireSignInMiddleware.maximumFormBytes)
            let fields = FormFields(urlEncoded: String(buffer: body))
            guard CSRF.matches(presented: fields[CSRF.fieldName], expected: request.cookies[CSRF.signInCookie]?.value ?? "") else {
                return try form(request, context, next: fields["next"], status: .forbidden,
                                message: "The sign-in form expired. Try again.")
            }
            let name = fields["name"] ?? "", password = fields["password"] ?? "", code = fields["code"]
            let address = context.clientAddress
            let throttle = configuration.signInThrottle, lifetime = configuration.sessionLifetime
            let outcome = try await services.withSession { session in
                try await SignIn(session: session, throttle: throttle, sessionLifetime: lifetime)
                    .attempt(name: name, password: password, code: code, address: address)
            }
            switch outcome {
            case .signedIn(let token):
                services.logger.info("console: signed in", metadata: ["account": "\(name.prefix(64))", "peer": "\(address)"])
                var response = Response(status: .seeOther, headers: [.location: next(fields["next"])])
                response.setCookie(ConsoleServer.sessionCookie(token, configuration: configuration))
                response.setCookie(clearedSignInCookie)
                return response
            case .refused:
                services.logger.notice("console: sign-in refused", metadata: ["peer": "\(address)"])
                return try form(request, context, next: fields["next"], name: name, status: .unauthorized,
                                message: "That name, password or code is not right.")
            case .needsCode:
                return try form(request, context, next: fields["next"], name: name, status: .unauthorized,
                                message: "Enter the 6-digit code from your authenticator app, with your password.", askCode: true)
            case .needsEnrolment:
                return try form(request, context, next: fields["next"], name: name, status: .forbidden,
                                message: "The console requires an authenticator code and your account has none yet. Ask an admin to run: flexcharge-outbox console user totp \(name)")
            case .throttled(let wait):
                services.logger.notice("console: sign-in throttled", metadata: ["peer": "\(address)"])
                var response = try form(request, context, next: fields["next"], name: name, status: .tooManyRequests,
                                        message: "Too many failed sign-ins. Try again in \(Self.minutes(wait)).")
                response.headers[.retryAfter] = String(wait)
                return response
            }
        }
        router.post("logout") { request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: RequireSignInMiddleware.maximumFormBytes)
            let fields = FormFields(urlEncoded: String(buffer: body))
            guard let id = context.sessionID, let user = context.user else {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            guard CSRF.matches(presented: fields[CSRF.fieldName], expected: context.csrfToken) else {
                return try ConsolePage.error(ConsoleError(.forbidden, "This form has expired. Reload the page and try again."))
                    .response(from: request, context: context)
            }
            try await services.withSession { session in
                try await ConsoleSessions(session: session).end(id: id)
                try await session.withTransaction { tx in
                    try ConsoleAccounts.audit(tx, actor: user.actor, action: "sign-out", subject: user.name, old: nil, new: nil)
                }
            }
            var response = Response(status: .seeOther, headers: [.location: "/login"])
            response.setCookie(Cookie(name: ConsoleSessions.cookieName, value: "", maxAge: 0, path: "/",
                                      secure: configuration.secureCookies, httpOnly: true, sameSite: .strict))
            return response
        }
    }

    private var clearedSignInCookie: Cookie {
        Cookie(name: CSRF.signInCookie, value: "", maxAge: 0, path: "/login", secure: configuration.secureCookies, httpOnly: true, sameSite: .strict)
    }

    /// Where to go after signing in: a local path, else the home page.
    private func next(_ path: String?) -> String { ConsoleRedirect.localPath(path) ?? "/" }

    private func form(
        _ request: Request, _ context: ConsoleRequestContext, next: String?, name: String = "", status: HTTPResponse.Status = .ok,
        message: String? = nil, askCode: Bool = false
    ) throws -> Response {
        let token = Secrets.token()
        let error: HTML = message.map { "<p class=\"error\" role=\"alert\" id=\"signin-error\">\($0)</p>" } ?? .empty
        let described: HTML = message == nil ? "" : " aria-describedby=\"signin-error\""
        let codeField: HTML = """
            <p><label for="code">Authenticator code\(askCode ? "" : " (if you have one)")</label>
            <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="7"\(askCode ? " required autofocus" : "")></p>
            """
        let body: HTML = """
            \(error)<form method="post" action="/login" class="sign-in"\(described)>
            <input type="hidden" name="\(CSRF.fieldName)" value="\(token)">
            <input type="hidden" name="next" value="\(ConsoleRedirect.localPath(next) ?? "/")">
            <p><label for="name">Name</label>
            <input id="name" name="name" type="text" autocomplete="username" required maxlength="64" value="\(name)"\(name.isEmpty ? " autofocus" : "")></p>
            <p><label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="200"\(name.isEmpty || askCode ? "" : " autofocus")></p>
            \(codeField)
            <p><button type="submit" class="primary">Sign in</button></p>
            </form>
            """
        var response = try ConsolePage(title: "Sign in", body: body, status: status).response(from: request, context: context)
        response.setCookie(Cookie(name: CSRF.signInCookie, value: token, maxAge: 3600, path: "/login",
                                  secure: configuration.secureCookies, httpOnly: true, sameSite: .strict))
        return response
    }

    private static func minutes(_ seconds: Int) -> String {
        seconds < 90 ? "\(seconds) seconds" : "\((seconds + 59) / 60) minutes"
    }
}
