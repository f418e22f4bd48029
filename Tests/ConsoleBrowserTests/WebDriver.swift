import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport

/// A small client of the W3C WebDriver protocol (https://www.w3.org/TR/webdriver2/) as Debian's
/// `chromedriver` speaks it, driving Debian's headless Chromium: enough for the console's browser
/// tests and scripts/screenshots (open a page, find elements by CSS, type, click, read text, run a
/// script, keys, screenshots, window size).
///
/// Why not Selenium: the tests are Swift, and the protocol is a handful of JSON requests.
struct Browser: Sendable {
    /// chromedriver's base URL, e.g. `http://127.0.0.1:9515`.
    let driver: String
    let sessionID: String
    /// The browser's process id (chromedriver's `goog:processID`), killed by ``close()`` should the
    /// session's delete not end it.
    let browserPID: pid_t?

    private var base: String { "\(driver)/session/\(sessionID)" }

    /// Starts a headless Chromium of its own (profile in a new temporary folder) at `width` x `height`.
    static func start(driver: String, width: Int = 1280, height: Int = 900) async throws -> Browser {
        let options: [String: Any] = [
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-crash-reporter",
                "--disable-extensions", "--no-first-run", "--lang=en-US", "--window-size=\(width),\(height)",
                "--hide-scrollbars", "--force-device-scale-factor=1",
            ],
        ]
        let capabilities: [String: Any] = [
            "capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options, "pageLoadStrategy": "normal"]],
        ]
        let value = try await WebDriverHTTP.send(.POST, "\(driver)/session", capabilities)
        guard let object = value as? [String: Any], let id = object["sessionId"] as? String else {
            throw WebDriverError("new session: no sessionId in \(String(describing: value))")
        }
        let pid = ((object["capabilities"] as? [String: Any])?["goog:processID"] as? Int).map { pid_t($0) }
        return Browser(driver: driver, sessionID: id, browserPID: pid)
    }

    /// Ends the session and the browser.
    func close() async {
        _ = try? await WebDriverHTTP.send(.DELETE, base, nil)
        if let browserPID, kill(browserPID, 0) == 0 {
            kill(browserPID, SIGKILL)
        }
    }

    // MARK: Navigation

    func open(_ url: String) async throws {
        try await command(.POST, "/url", ["url": url])
    }

    func currentURL() async throws -> String {
        try await command(.GET, "/url") as? String ?? ""
    }

    func title() async throws -> String {
        try await command(.GET, "/title") as? String ?? ""
    }

    func pageSource() async throws -> String {
        try await command(.GET, "/source") as? String ?? ""
    }

    // MARK: Elements

    /// The first element matching `css`, or nil when none does (now; see ``waitFor(_:timeout:)``).
    func find(_ css: String, in parent: Element? = nil) async throws -> Element? {
        let path = parent.map { "/element/\($0.id)/elements" } ?? "/elements"
        return try await findAll(css, path: path).first
    }

    /// Every element matching `css`.
    func findAll(_ css: String, in parent: Element? = nil) async throws -> [Element] {
        try await findAll(css, path: parent.map { "/element/\($0.id)/elements" } ?? "/elements")
    }

    private func findAll(_ css: String, path: String) async throws -> [Element] {
        let value = try await command(.POST, path, ["using": "css selector", "value": css])
        return (value as? [[String: Any]] ?? []).compactMap(Element.init)
    }

    /// The first element matching `css`, waiting for it up to `timeout`.
    func waitFor(_ css: String, timeout: Duration = .seconds(20)) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let element = try await find(css) { return element }
            guard ContinuousClock.now < deadline else {
                throw WebDriverError("no element matches \(css) after \(timeout) on \(try await currentURL())")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Waits until `condition` holds (checked every 200 ms, up to `timeout`); throws with `what`.
    func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw WebDriverError("timed out after \(timeout) waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func click(_ element: Element) async throws {
        try await command(.POST, "/element/\(element.id)/click", [:])
    }

    /// Types `text` into the element (after what it holds).
    func type(_ text: String, into element: Element) async throws {
        try await command(.POST, "/element/\(element.id)/value", ["text": text])
    }

    func clear(_ element: Element) async throws {
        try await command(.POST, "/element/\(element.id)/clear", [:])
    }

    /// The element's rendered text.
    func text(_ element: Element) async throws -> String {
        try await command(.GET, "/element/\(element.id)/text") as? String ?? ""
    }

    /// The rendered text of the first element matching `css` now, found and read in one step in the page, or nil
    /// when none matches: for a part of the page that script replaces while it is read (an element found first
    /// and read next may be gone by then: "stale element reference").
    func text(of css: String) async throws -> String? {
        try await execute("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", [css]) as? String
    }

    func attribute(_ name: String, of element: Element) async throws -> String? {
        try await command(.GET, "/element/\(element.id)/attribute/\(name)") as? String
    }

    /// The DOM property (`value`, `checked`, `tagName`, ...).
    func property(_ name: String, of element: Element) async throws -> Any? {
        try await command(.GET, "/element/\(element.id)/property/\(name)")
    }

    func isDisplayed(_ element: Element) async throws -> Bool {
        try await command(.GET, "/element/\(element.id)/displayed") as? Bool ?? false
    }

    /// The element that has the keyboard focus.
    func activeElement() async throws -> Element? {
        (try await command(.GET, "/element/active") as? [String: Any]).flatMap(Element.init)
    }

    // MARK: Keyboard

    /// Presses and releases keys on whatever has the focus, one after the other (WebDriver key
    /// codes: ``Key``), as a person at the keyboard would.
    func press(_ keys: [String]) async throws {
        var actions: [[String: Any]] = []
        for key in keys {
            actions.append(["type": "keyDown", "value": key])
            actions.append(["type": "keyUp", "value": key])
        }
        try await command(.POST, "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
        try await command(.DELETE, "/actions")
    }

    enum Key {
        static let tab = "\u{E004}"
        static let enter = "\u{E007}"
        static let shift = "\u{E008}"
        static let escape = "\u{E00C}"
        static let space = "\u{E00D}"
    }

    // MARK: Scripts

    /// Runs `script` (a function body; `arguments[0]`... are `arguments`) in the page; its return value.
    @discardableResult
    func execute(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command(.POST, "/execute/sync", ["script": script, "args": arguments.map(Self.wire)])
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1](value)` when done; its value.
    func executeAsync(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command(.POST, "/execute/async", ["script": script, "args": arguments.map(Self.wire)])
    }

    private static func wire(_ value: Any) -> Any {
        if let element = value as? Element { return [Element.key: element.id] }
        return value
    }

    // MARK: Window

    /// Renders the page at `width` x `height` CSS pixels as a phone or desktop would (Chromium's
    /// device metrics: a real headless window cannot be narrower than 500 px).
    func setViewport(width: Int, height: Int, mobile: Bool) async throws {
        try await command(.POST, "/goog/cdp/execute", [
            "cmd": "Emulation.setDeviceMetricsOverride",
            "params": ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile],
        ])
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        guard let base64 = try await command(.GET, "/screenshot") as? String, let data = Data(base64Encoded: base64) else {
            throw WebDriverError("screenshot: no PNG")
        }
        return data
    }

    /// A PNG of the whole page (as tall as its content, at most `maximumHeight`), at the current width.
    func fullPageScreenshot(maximumHeight: Int = 6000) async throws -> Data {
        let metrics = try await command(.POST, "/goog/cdp/execute", ["cmd": "Page.getLayoutMetrics", "params": [:]]) as? [String: Any]
        let size = metrics?["cssContentSize"] as? [String: Any]
        let width = (size?["width"] as? Double).map { Int($0.rounded(.up)) } ?? 1280
        let height = min((size?["height"] as? Double).map { Int($0.rounded(.up)) } ?? 900, maximumHeight)
        let value = try await command(.POST, "/goog/cdp/execute", [
            "cmd": "Page.captureScreenshot",
            "params": ["format": "png", "captureBeyondViewport": true,
                       "clip": ["x": 0, "y": 0, "width": width, "height": height, "scale": 1]],
        ]) as? [String: Any]
        guard let base64 = value?["data"] as? String, let data = Data(base64Encoded: base64) else {
            throw WebDriverError("full-page screenshot: no PNG")
        }
        return data
    }

    // MARK: Cookies

    func cookies() async throws -> [[String: Any]] {
        try await command(.GET, "/cookie") as? [[String: Any]] ?? []
    }

    // MARK: Protocol

    @discardableResult
    private func command(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        try await WebDriverHTTP.send(method, base + path, method == .GET ? nil : (body ?? [:]))
    }
}

/// A reference to an element of the page (WebDriver's web element).
struct Element: @unchecked Sendable {
    // @unchecked: an immutable string.
    static let key = "element-6066-11e4-a52e-4f735466cecf"
    let id: String

    init?(_ object: [String: Any]) {
        guard let id = object[Self.key] as? String else { return nil }
        self.id = id
    }
}

struct WebDriverError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One WebDriver request: JSON in, the answer's `value` out, or the protocol's error thrown.
enum WebDriverHTTP {
    static func send(_ method: HTTPMethod, _ url: String, _ body: [String: Any]?) async throws -> Any? {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        // A new session starts a browser: slow on a loaded two-core machine.
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView), options: [.fragmentsAllowed]) as? [String: Any]
        let value = object?["value"]
        if response.status.code >= 400 {
            let error = value as? [String: Any]
            let name = error?["error"] as? String ?? "HTTP \(response.status.code)"
            let message = (error?["message"] as? String ?? String(buffer: bytes)).prefix(600)
            throw WebDriverError("WebDriver \(method) \(url.split(separator: "/").suffix(2).joined(separator: "/")): \(name): \(message)")
        }
        return value is NSNull ? nil : value
    }
}
