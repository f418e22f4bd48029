import Foundation
import LibPQ
import Testing
import TestSupport

/// Every page of the console on a demo database, in the browser at 1280 px and at a phone's 390 px:
/// it renders (its heading, no error), needs no horizontal scrolling, and axe-core finds no serious or
/// critical accessibility violation; and the keyboard reaches the skip link, the menu and the forms.
///
/// With `FLEXCHARGE_SCREENSHOTS_DIR` set (scripts/screenshots sets it to docs/screenshots), the tour
/// also saves a PNG of each page at 1280 px (the whole page, up to 2400 px tall) and of the events page
/// at phone width (the screen).
@Suite(.serialized, .enabled(if: ChromeDriver.shouldRun, ChromeDriver.skipReason))
struct PageTourBrowserTests {
    /// A page of the tour: its file name, path and a CSS selector that shows it rendered its content.
    struct Page {
        let name: String
        let path: String
        let ready: String
    }

    static let widths = [(width: 1280, height: 900, mobile: false), (width: 390, height: 844, mobile: true)]
    static let phoneShot = "events"

    @Test func everyPageRendersWithoutHorizontalScrollAndPassesAxeAtBothWidths() async throws {
        let screenshots = ProcessInfo.processInfo.environment["FLEXCHARGE_SCREENSHOTS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        try await ConsoleStack.with(sandboxFaults: DemoData.faults) { stack in
            let demo = try await DemoData.seed(stack)
            let pages = [
                Page(name: "merchants", path: "/merchants", ready: "main table"),
                Page(name: "merchant-detail", path: "/merchants/\(demo.merchant)", ready: "table#switches"),
                Page(name: "events", path: "/events?merchant=\(demo.merchant)", ready: "table#events"),
                Page(name: "event-detail", path: "/events/\(demo.event)", ready: "#attempts"),
                Page(name: "queue", path: "/queue", ready: "figure#chart-backlog svg"),
                Page(name: "reports", path: "/reports", ready: "table#reports-rows"),
            ]
            try await ChromeDriver.withBrowser { browser in
                var problems: [String] = []
                for size in Self.widths {
                    try await browser.setViewport(width: size.width, height: size.height, mobile: size.mobile)
                    try await browser.open(stack.consoleURL + "/login")
                    problems += try await Self.check(browser, Page(name: "sign-in", path: "/login", ready: "form[action='/login']"),
                                                     width: size.width, screenshots: screenshots, stack: stack)
                }
                try await browser.signIn(stack, as: DemoData.admin)
                for size in Self.widths {
                    try await browser.setViewport(width: size.width, height: size.height, mobile: size.mobile)
                    for page in pages {
                        try await browser.open(stack.consoleURL + page.path)
                        problems += try await Self.check(browser, page, width: size.width, screenshots: screenshots, stack: stack)
                    }
                }
                #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
            }
        }
    }

    /// Checks the page the browser shows (and saves its screenshot when asked); returns what is wrong.
    static func check(_ browser: Browser, _ page: Page, width: Int, screenshots: String?, stack: ConsoleStack) async throws -> [String] {
        let label = "\(page.name) at \(width) px"
        _ = try await browser.waitFor(page.ready)
        var problems: [String] = []
        var heading = ""
        if let h1 = try await browser.find("main h1") { heading = try await browser.text(h1) }
        if heading.isEmpty || ["Not allowed", "Not found", "Something went wrong", "Cannot do that"].contains(heading) {
            problems.append("\(label): heading \"\(heading)\"")
        }
        // Nothing wider than the viewport: the document does not scroll sideways.
        let overflow = try await browser.execute(
            """
            const root = document.documentElement;
            if (root.scrollWidth <= root.clientWidth) return '';
            const wide = [...document.querySelectorAll('body *')].filter(e => {
                const r = e.getBoundingClientRect(); return r.right > root.clientWidth + 1 && !e.closest('.table-wrap');
            }).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(' ')[0] : ''));
            return root.scrollWidth + ' > ' + root.clientWidth + ': ' + wide.join(', ');
            """) as? String ?? "?"
        if !overflow.isEmpty { problems.append("\(label): scrolls sideways, \(overflow)") }
        for violation in try await Accessibility.seriousViolations(in: browser) {
            problems.append("\(label): axe \(violation)")
        }
        if let screenshots, width == 1280 || page.name == phoneShot {
            let file = "\(screenshots)/\(page.name)\(width == 1280 ? "" : "-phone").png"
            try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
            // The whole page at 1280 px; at phone width what the phone's screen shows.
            let png = width == 1280 ? try await browser.fullPageScreenshot(maximumHeight: 2400) : try await browser.screenshot()
            try png.write(to: URL(fileURLWithPath: file))
        }
        return problems
    }

    /// From the top of a page, Tab reaches the skip link first, which moves the focus to the main
    /// content; then Tab reaches every entry of the main menu and the event search's fields, each
    /// showing a focus indicator; Enter on a menu entry follows it.
    @Test func theKeyboardReachesTheSkipLinkTheMenuAndTheForms() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser(DemoData.admin, role: "admin")
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: DemoData.admin)
                try await browser.open(stack.consoleURL + "/events")
                _ = try await browser.waitFor("form#event-search")

                try await browser.press([Browser.Key.tab])
                let first = try #require(try await browser.activeElement())
                #expect(try await browser.attribute("class", of: first) == "skip-link", "the first Tab stop is not the skip link")
                #expect(try await browser.isDisplayed(first), "the focused skip link is not shown")
                try await browser.press([Browser.Key.enter])
                let afterSkip = try await browser.execute("return document.activeElement.id") as? String
                #expect(afterSkip == "main", "Enter on the skip link left the focus on \(afterSkip ?? "nothing")")

                // Walk the page from the top with Tab, noting each stop and whether it shows the focus.
                try await browser.open(stack.consoleURL + "/events")
                _ = try await browser.waitFor("form#event-search")
                var stops: [String] = []
                var unmarked: [String] = []
                for _ in 0..<60 {
                    try await browser.press([Browser.Key.tab])
                    let stop = try await browser.execute(
                        """
                        const e = document.activeElement; if (!e || e === document.body) return null;
                        const s = getComputedStyle(e);
                        const marked = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
                        return [e.getAttribute('href') || e.id || e.getAttribute('name') || e.tagName.toLowerCase(), marked];
                        """) as? [Any]
                    guard let stop, let key = stop.first as? String else { break }
                    if stops.contains(key) { break }
                    stops.append(key)
                    if (stop.last as? Bool) != true { unmarked.append(key) }
                }
                let menu = try await browser.findAll("nav[aria-label=Main] a")
                #expect(menu.count >= 4, "the main menu has \(menu.count) entries")
                for entry in menu {
                    let href = try await browser.attribute("href", of: entry) ?? "?"
                    #expect(stops.contains(href), "Tab never reaches the menu entry \(href): stops \(stops)")
                }
                #expect(stops.contains("search-state") && stops.contains("search-merchant"), "Tab never reaches the search form: \(stops)")
                #expect(unmarked.isEmpty, "no visible focus indicator on \(unmarked)")

                // Enter on a focused menu entry follows it.
                try await browser.execute("document.querySelector(\"nav[aria-label=Main] a[href='/merchants']\").focus()")
                try await browser.press([Browser.Key.enter])
                try await browser.waitUntil("the merchants page after Enter") { try await browser.currentURL().hasSuffix("/merchants") }
            }
        }
    }
}

/// The demo database of the tour (and of scripts/screenshots): three merchants with different
/// switches (one not live: its events are skipped) and a site override, a few dozen sample events
/// drained by a real worker (the simulator answers the first two transmits with 503, so some events
/// are retried), so every page has something to show.
enum DemoData {
    static let admin = "alice"
    static let faults = ["POST /transmit=503#2"]

    struct Seeded {
        let merchant: String
        /// An approved evaluate, the richest event page.
        let event: Int64
    }

    static func seed(_ stack: ConsoleStack) async throws -> Seeded {
        try await stack.addUser(admin, role: "admin")
        try await stack.enrol("shoes-r-us", name: "Shoes R Us", citWebsite: "sandbox", citCallCenter: "sandbox", mit: "production")
        try await stack.enrol("books-direct", name: "Books Direct", citWebsite: "sandbox", citCallCenter: "off", mit: "sandbox")
        try await stack.cli(["merchant", "add", "toys-co", "--name", "Toys (not live yet)", "--actor", "demo"])
        try await stack.cli(["merchant", "set", "shoes-r-us", "--site", "https://shoes-r-us.example", "--mit", "sandbox", "--actor", "demo"])
        try await stack.cli(["sample-events", "--merchant", "shoes-r-us", "--merchant", "books-direct", "--merchant", "toys-co", "--orders", "12"])
        stack.workers.append(try stack.startWorker(maxAttempts: 2))
        try await stack.waitUntil("SELECT count(*) = 0 FROM flexcharge.outbox WHERE state IN ('pending', 'running')", timeout: .seconds(120))
        let event = try await stack.session.query(
            """
            SELECT id FROM flexcharge.outbox WHERE merchant_id = 'shoes-r-us' AND kind = 'evaluate'
             ORDER BY (decision = 'APPROVED') DESC NULLS LAST, id LIMIT 1
            """).first
        guard let event else { throw TestSupportError("the demo has no evaluate") }
        return Seeded(merchant: "shoes-r-us", event: try event.decode("id", as: Int64.self))
    }
}
