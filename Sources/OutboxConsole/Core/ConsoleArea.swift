import Hummingbird

/// One area of the console (Merchants, Events, Queue, Reports, …): its menu entry, its routes and any
/// static files it serves.
///
/// HOW TO ADD PAGES (F, G):
/// 1. In your own file (e.g. `Pages/MerchantsArea.swift`) declare
///
///        enum MerchantsArea: ConsoleArea {
///            static let navigation: ConsoleNavigation? = ConsoleNavigation(
///                title: "Merchants", path: "/merchants", order: 10, summary: "Switches, sites, credentials, audit")
///            static func register(_ routes: ConsoleRoutes) {
///                routes.get("/merchants") { request, context in
///                    let list = try await routes.services.withSession { try await MerchantStore(session: $0, actor: "").list() }
///                    return ConsolePage(title: "Merchants", body: "<table>…\(list.map { row($0) })…</table>")
///                }
///                routes.post("/merchants/:id/switch", role: .admin) { request, context in
///                    let value = try context.form.required("value")            // CSRF already checked
///                    try await routes.services.withSession {
///                        try await MerchantStore(session: $0, actor: try context.actor).set(…) // audited as console:<user>
///                    }
///                    return ConsoleRedirect(to: "/merchants/…", notice: "Switch changed.")
///                }
///            }
///        }
///
/// 2. Add `MerchantsArea.self` to ``ConsoleAreas/all`` (Core/ConsoleAreas.swift): the one line you
///    change outside your files.
///
/// Every route registered through ``ConsoleRoutes`` needs a signed-in user; `get` is open to viewers,
/// `post` names the role it needs and checks the CSRF token before your handler runs. Write HTML with
/// ``HTML`` (interpolated text is escaped) and return a ``ConsolePage`` (wrapped in the shared layout),
/// a ``ConsoleRedirect`` after a POST, or any Hummingbird `ResponseGenerator` (CSV downloads).
/// Throw ``ConsoleError`` for a 400/403/404 page.
public protocol ConsoleArea {
    /// The area's entry in the main menu; nil for none.
    static var navigation: ConsoleNavigation? { get }
    /// Static files served at `/static/<name>` (a vendored script, an icon). CSS: prefer adding rules to
    /// your own asset (e.g. `queue.css`) and naming it in ``ConsolePage/stylesheets``.
    static var assets: [ConsoleAsset] { get }
    /// Adds the area's routes.
    static func register(_ routes: ConsoleRoutes)
}

extension ConsoleArea {
    public static var navigation: ConsoleNavigation? { nil }
    public static var assets: [ConsoleAsset] { [] }
}

/// A main-menu entry: the title, the path it links to (a page whose path starts with it is marked
/// current), the order in the menu (lower first) and a line for the home page.
public struct ConsoleNavigation: Sendable {
    public let title: String
    public let path: String
    public let order: Int
    public let summary: String

    public init(title: String, path: String, order: Int, summary: String) {
        self.title = title
        self.path = path
        self.order = order
        self.summary = summary
    }
}

/// A static file served at `/static/<name>` with `Cache-Control: no-cache`.
public struct ConsoleAsset: Sendable {
    public let name: String
    public let contentType: String
    public let body: String

    public init(name: String, contentType: String, body: String) {
        self.name = name
        self.contentType = contentType
        self.body = body
    }
}
