import Hummingbird

/// `/`: the console's home page, one card per area of the menu.
enum HomeArea: ConsoleArea {
    static func register(_ routes: ConsoleRoutes) {
        routes.get("/") { _, context in
            let cards = ConsoleAreas.all.compactMap { $0.navigation }.sorted { $0.order < $1.order }.map { entry -> HTML in
                "<li class=\"card\"><h2><a href=\"\(entry.path)\">\(entry.title)</a></h2><p>\(entry.summary)</p></li>"
            }
            let user = try context.signedIn
            return ConsolePage(title: "FlexCharge Outbox console", body: """
                <p>Signed in as \(user.name), \(user.role.rawValue): \(Self.rights(user.role))</p>
                <ul class="cards">\(cards)</ul>
                """)
        }
    }

    static func rights(_ role: ConsoleRole) -> String {
        switch role {
        case .viewer: "you can read every page."
        case .operator: "you can read every page and retry, skip, pause and resume events."
        case .admin: "you can also change merchant switches and credentials and manage console accounts."
        }
    }
}
