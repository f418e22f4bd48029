import Foundation
import HTTPTypes
import Hummingbird

/// On the console's pages (not the sign-in page or `/static/`): a request without a signed-in user is
/// sent to `/login` (a GET, which comes back afterwards) or refused with 401 (anything else); a POST
/// must carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`) or is refused with
/// 403 before any handler runs. The POST's url-encoded form is read (at most 64 KiB) into `context.form`.
struct RequireSignInMiddleware: RouterMiddleware {
    typealias Context = ConsoleRequestContext

    static let maximumFormBytes = 64 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard context.user != nil else {
            if request.method == .get || request.method == .head {
                let back = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                let next = back == "/" ? "" : "?next=" + (back.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                return Response(status: .seeOther, headers: [.location: "/login" + next])
            }
            return try ConsolePage.error(ConsoleError(.unauthorized, "Sign in first.")).response(from: request, context: context)
        }
        guard request.method == .post else { return try await next(request, context) }
        var request = request
        let body = try await request.collectBody(upTo: Self.maximumFormBytes)
        let isForm = request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
        context.form = isForm ? FormFields(urlEncoded: String(buffer: body)) : FormFields()
        let presented = context.form[CSRF.fieldName] ?? request.headers[HTTPField.Name(CSRF.headerName)!]
        guard CSRF.matches(presented: presented, expected: context.csrfToken) else {
            return try ConsolePage.error(ConsoleError(
                .forbidden, "This form has expired or did not come from the console. Go back, reload the page and try again."))
                .response(from: request, context: context)
        }
        return try await next(request, context)
    }
}
