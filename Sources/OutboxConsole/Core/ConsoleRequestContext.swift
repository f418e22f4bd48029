import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The request context of every console route. The middleware fills it in before a page runs:
/// ``user`` (nil only on the sign-in pages), ``csrfToken`` (the session's token for forms),
/// ``cspNonce`` (for a `<script nonce=…>` or `<style nonce=…>` the page writes inline) and, for a POST,
/// ``form`` (the url-encoded body, already read and CSRF-checked).
public struct ConsoleRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer (the proxy in production).
    public let remoteAddress: SocketAddress?
    /// The client's IP: the peer's, or behind a trusted proxy the last address of its
    /// `X-Forwarded-For` (what sign-in throttling counts and sessions record).
    public internal(set) var clientAddress = "unknown"
    /// The signed-in user; pages reached through ``ConsoleRoutes`` always have one.
    public internal(set) var user: ConsoleUser?
    /// The session's CSRF token; ``HTML/csrfField(_:)`` writes it into a form.
    public internal(set) var csrfToken: String = ""
    /// A fresh random value per response, allowed by its Content-Security-Policy for inline
    /// `<script nonce="\(context.cspNonce)">` and `<style nonce=…>`. Inline event handlers
    /// (`onclick=`) and `style=` attributes are refused by the policy: use classes and a script.
    public internal(set) var cspNonce: String = ""
    /// The fields of a POSTed `application/x-www-form-urlencoded` body.
    public internal(set) var form = FormFields()
    /// Whether cookies set in the response carry `Secure` (the configuration's choice).
    public internal(set) var secureCookies = true
    /// The session row's id (internal: sign-out and the session store use it).
    var sessionID: Int64?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The signed-in user, or a 401 (never reached on ``ConsoleRoutes``' pages: they require sign-in).
    public var signedIn: ConsoleUser {
        get throws(ConsoleError) {
            guard let user else { throw ConsoleError(.unauthorized, "Sign in first.") }
            return user
        }
    }

    /// The audit trail's name for who acts: pass it as `actor:` to the engine's actions
    /// (`OperatorActions`, `MerchantStore`, `PauseBoard`), so the change is recorded under the
    /// signed-in user (`console:<name>`).
    public var actor: String {
        get throws(ConsoleError) { try signedIn.actor }
    }

    /// Refuses (403) unless the signed-in user has `role` or a higher one. ``ConsoleRoutes`` checks a
    /// route's role already; call this for a finer check inside a page (e.g. show a form only to admins).
    public func requireRole(_ role: ConsoleRole) throws(ConsoleError) {
        let user = try signedIn
        guard user.role.includes(role) else {
            throw ConsoleError(.forbidden, "This needs the \(role) role; you are signed in as \(user.role).")
        }
    }

    /// True when the signed-in user has `role` or a higher one (to show or hide a form).
    public func may(_ role: ConsoleRole) -> Bool { user?.role.includes(role) ?? false }
}
