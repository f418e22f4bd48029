import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing
import TestSupport

/// Debian's `chromium` and `chromium-driver` (scripts/ensure-deps.sh installs them), and a
/// `chromedriver` process of the test's own on a free loopback port.
enum ChromeDriver {
    /// chromedriver's path, when Chromium and its driver are installed.
    static var executable: String? {
        let chromium = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        guard chromium else { return nil }
        return ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether the browser tests run: Chromium is here, or this is CI (`CI=true`), where its absence
    /// fails the tests (``require()``) instead of skipping them.
    static var shouldRun: Bool { executable != nil || isCI }

    static var isCI: Bool { ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }

    static let skipReason: Comment =
        "headless Chromium is not installed (Debian packages chromium and chromium-driver; scripts/ensure-deps.sh installs them)"

    static func require() throws -> String {
        guard let executable else {
            throw TestSupportError("CI=true but Chromium or chromedriver is missing: run scripts/ensure-deps.sh (Debian chromium, chromium-driver)")
        }
        return executable
    }

    /// Runs a chromedriver for `body`, then stops it.
    static func with<T>(_ body: (String) async throws -> T) async throws -> T {
        let executable = try require()
        let port = try freeTCPPort()
        return try await withChildProcess(executable, ["--port=\(port)", "--allowed-ips=127.0.0.1", "--log-level=WARNING"]) { process in
            let url = "http://127.0.0.1:\(port)"
            let deadline = ContinuousClock.now + .seconds(30)
            while (try? await WebDriverHTTP.send(.GET, url + "/status", nil) as? [String: Any])?["ready"] as? Bool != true {
                guard process.isRunning, ContinuousClock.now < deadline else {
                    throw TestSupportError("chromedriver did not start: \(process.stderr.suffix(2000))\(process.stdout.suffix(2000))")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            return try await body(url)
        }
    }

    /// A chromedriver and one browser session for `body`; the browser is closed after it.
    static func withBrowser<T>(width: Int = 1280, height: Int = 900, _ body: (Browser) async throws -> T) async throws -> T {
        try await with { driver in
            let browser = try await Browser.start(driver: driver, width: width, height: height)
            do {
                let value = try await body(browser)
                await browser.close()
                return value
            } catch {
                await browser.close()
                throw error
            }
        }
    }
}
