import HTTPTypes
import Hummingbird

/// Security headers on every response, and the CSP nonce for the request:
/// - `Content-Security-Policy`: everything from this origin only; scripts and `<style>` blocks only from
///   `/static/` or carrying the request's nonce (`context.cspNonce`); no inline event handlers or `style=`
///   attributes; no framing (`frame-ancestors 'none'`); forms post only here;
/// - `X-Frame-Options: DENY` (older browsers), `X-Content-Type-Options: nosniff`,
///   `Referrer-Policy: same-origin`, `Cross-Origin-Opener-Policy: same-origin`, a `Permissions-Policy`
///   that turns off what the console never uses;
/// - `Cache-Control: no-store` on everything but `/static/` (pages show who is signed in and live data).
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = ConsoleRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let nonce = Secrets.token(bytes: 16)
        context.cspNonce = nonce
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; script-src 'self' 'nonce-\(nonce)'; style-src 'self' 'nonce-\(nonce)'; img-src 'self' data:; "
            + "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("Permissions-Policy")!] = "camera=(), microphone=(), geolocation=(), payment=()"
        if !request.uri.path.hasPrefix("/static/") {
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}
