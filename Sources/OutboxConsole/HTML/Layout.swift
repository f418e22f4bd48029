import Foundation

/// The shared frame of every page: a skip link to `<main>`, the header with the main menu (from
/// ``ConsoleAreas/all``) and the signed-in user with a sign-out form, the notice of the last action,
/// and the page's `<h1>` and body. One stylesheet, `/static/console.css` (``Stylesheet``); no script
/// unless a page names one.
enum Layout {
    static func render(_ page: ConsolePage, path: String, context: ConsoleRequestContext?, notice: String?) -> HTML {
        let user = context?.user
        let navigation = user == nil ? HTML.empty : menu(path: path)
        let who: HTML = if let user, let context {
            """
            <div class="who"><span>\(user.name) <span class="role">(\(user.role.rawValue))</span></span>
            <form method="post" action="/logout">\(HTML.csrfField(context))<button type="submit" class="link">Sign out</button></form></div>
            """
        } else { .empty }
        let refresh: HTML = page.refreshSeconds.map { "<meta http-equiv=\"refresh\" content=\"\(max(2, $0))\">" } ?? .empty
        let styles = HTML(page.stylesheets.map { "<link rel=\"stylesheet\" href=\"/static/\($0)\">" })
        let scripts = HTML(page.scripts.map { "<script defer src=\"/static/\($0)\"></script>" })
        let noticeHTML: HTML = notice.map { "<p class=\"notice\" role=\"status\">\($0)</p>" } ?? .empty
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            \(refresh)<title>\(page.title) · FlexCharge Outbox</title>
            <link rel="stylesheet" href="/static/console.css">\(styles)\(scripts)
            </head>
            <body>
            <a class="skip-link" href="#main">Skip to main content</a>
            <header class="top">
            <a class="brand" href="/">FlexCharge Outbox</a>
            \(navigation)\(who)
            </header>
            <main id="main" tabindex="-1">
            \(noticeHTML)<h1>\(page.title)</h1>
            \(keyboardScrollable(page.body))
            </main>
            </body>
            </html>
            """
    }

    /// Every `<div class="table-wrap">` (a table that scrolls sideways on a phone) made focusable, so a
    /// keyboard can scroll it (axe's scrollable-region-focusable): the one place that rule lives.
    static func keyboardScrollable(_ body: HTML) -> HTML {
        HTML(unescaped: body.markup.replacingOccurrences(of: "<div class=\"table-wrap\">", with: "<div class=\"table-wrap\" tabindex=\"0\">"))
    }

    /// The main menu; the entry whose path starts the current path is `aria-current="page"`.
    static func menu(path: String) -> HTML {
        let entries = ConsoleAreas.all.compactMap { $0.navigation }.sorted { $0.order < $1.order }
        let current = entries.filter { path == $0.path || (path.hasPrefix($0.path + "/") && $0.path != "/") }
            .max { $0.path.count < $1.path.count }
        let items = entries.map { entry -> HTML in
            let mark: HTML = entry.path == current?.path ? " aria-current=\"page\"" : ""
            return "<li><a href=\"\(entry.path)\"\(mark)>\(entry.title)</a></li>"
        }
        return "<nav aria-label=\"Main\"><ul>\(items)</ul></nav>"
    }
}

extension HTML {
    /// The hidden CSRF field every POST form carries: `<form method="post">\(HTML.csrfField(context))…`.
    /// A POST without it (or with another session's token) is refused with 403.
    public static func csrfField(_ context: ConsoleRequestContext) -> HTML {
        "<input type=\"hidden\" name=\"\(CSRF.fieldName)\" value=\"\(context.csrfToken)\">"
    }
}
