import Foundation
import Hummingbird

/// A page in the shared layout (menu, skip link, `<main>`, the signed-in user, sign-out). `body` goes
/// inside `<main>` after an `<h1>` of `title`. The response is `text/html`, `no-store`, with the
/// security headers of ``SecurityHeadersMiddleware``.
public struct ConsolePage: ResponseGenerator, Sendable {
    public var title: String
    public var body: HTML
    public var status: HTTPResponse.Status
    /// Extra stylesheets from `/static/` (an area's own `ConsoleAsset`), after `console.css`.
    public var stylesheets: [String]
    /// Scripts from `/static/` (vendored, an area's own `ConsoleAsset`), loaded with `defer`.
    public var scripts: [String]
    /// Reload the page every so many seconds (a `<meta http-equiv="refresh">`, no script needed).
    public var refreshSeconds: Int?

    public init(
        title: String, body: HTML, status: HTTPResponse.Status = .ok, stylesheets: [String] = [], scripts: [String] = [],
        refreshSeconds: Int? = nil
    ) {
        self.title = title
        self.body = body
        self.status = status
        self.stylesheets = stylesheets
        self.scripts = scripts
        self.refreshSeconds = refreshSeconds
    }

    /// The page for a refused or failed request.
    public static func error(_ error: ConsoleError) -> ConsolePage {
        let title = switch error.status.code {
        case 401: "Sign in first"
        case 403: "Not allowed"
        case 404: "Not found"
        case 429: "Too many attempts"
        default: error.status.code >= 500 ? "Something went wrong" : "Cannot do that"
        }
        return ConsolePage(title: title, body: "<p class=\"error\" role=\"alert\">\(error.message)</p><p><a href=\"/\">Back to the console</a></p>",
                           status: error.status)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let console = context as? ConsoleRequestContext
        let notice = Notice.read(request)
        let html = Layout.render(self, path: request.uri.path, context: console, notice: notice)
        var response = Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html.markup)))
        if notice != nil { response.setCookie(Notice.clear(secure: console?.secureCookies ?? true)) }
        return response
    }
}

/// The answer to a POST: 303 to `path` (a path of this console), with an optional notice shown once on
/// the next page ("Event 42 requeued.").
public struct ConsoleRedirect: ResponseGenerator, Sendable {
    public let path: String
    public let notice: String?

    public init(to path: String, notice: String? = nil) {
        self.path = ConsoleRedirect.localPath(path) ?? "/"
        self.notice = notice
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response(status: .seeOther, headers: [.location: path])
        if let notice {
            response.setCookie(Notice.cookie(notice, secure: (context as? ConsoleRequestContext)?.secureCookies ?? true))
        }
        return response
    }

    /// `path` when it is a path on this site (starts with one `/`), else nil: a redirect never leaves.
    static func localPath(_ path: String?) -> String? {
        guard let path, path.hasPrefix("/"), !path.hasPrefix("//"), !path.contains("\\"),
              !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return nil }
        return path
    }
}

/// A one-time message carried to the next page in a short-lived cookie.
enum Notice {
    static let cookieName = "fc_console_notice"

    static func cookie(_ text: String, secure: Bool) -> Cookie {
        let encoded = Data(text.prefix(300).utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return Cookie(name: cookieName, value: encoded, maxAge: 60, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }

    static func clear(secure: Bool) -> Cookie {
        Cookie(name: cookieName, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }

    static func read(_ request: Request) -> String? {
        guard let value = request.cookies[cookieName]?.value, !value.isEmpty else { return nil }
        var base64 = value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) }
    }
}
