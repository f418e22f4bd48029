import Foundation
import TestSupport

/// The accessibility checker: Deque's axe-core, run inside the page the browser shows.
///
/// scripts/ensure-deps.sh takes axe.min.js out of PyPI's axe-selenium-python wheel into a cache
/// (the one place that names the version); `FLEXCHARGE_AXE_JS` points elsewhere.
enum Accessibility {
    static var scriptPath: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["FLEXCHARGE_AXE_JS"], !path.isEmpty { return path }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache")
        let folder = cache + "/flexcharge-outbox"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: folder))?
            .filter { $0.hasPrefix("axe-selenium-python-") }.sorted() ?? []
        return folder + "/" + (versions.last ?? "axe-selenium-python-missing") + "/axe.min.js"
    }

    /// axe.min.js, or an error that says how to get it.
    static func script() throws -> String {
        guard let text = try? String(contentsOfFile: scriptPath, encoding: .utf8), text.contains("axe") else {
            throw TestSupportError("axe-core is missing at \(scriptPath): run scripts/ensure-deps.sh")
        }
        return text
    }

    /// One rule that failed: its id, impact and where.
    struct Violation: CustomStringConvertible {
        let id: String
        let impact: String
        let help: String
        let targets: [String]
        var description: String { "\(impact) \(id): \(help) at \(targets.prefix(5).joined(separator: ", "))" }
    }

    /// Runs axe-core (WCAG 2.0/2.1 A and AA rules and best practices) on the page the browser shows and
    /// returns the violations whose impact is serious or critical.
    static func seriousViolations(in browser: Browser) async throws -> [Violation] {
        let loaded = try await browser.execute("return typeof window.axe === 'object'") as? Bool ?? false
        if !loaded { try await browser.execute(try script() + "\n;return true;") }
        let result = try await browser.executeAsync(
            """
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
              .then(r => done(JSON.stringify(r.violations.map(v => ({
                  id: v.id, impact: v.impact || '', help: v.help,
                  targets: v.nodes.map(n => n.target.join(' '))})))))
              .catch(e => done(JSON.stringify({error: String(e)})));
            """)
        guard let json = result as? String, let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else {
            throw TestSupportError("axe-core did not run: \(String(describing: result))")
        }
        return parsed.compactMap { item in
            guard let id = item["id"] as? String, let impact = item["impact"] as? String,
                  impact == "serious" || impact == "critical" else { return nil }
            return Violation(id: id, impact: impact, help: item["help"] as? String ?? "", targets: item["targets"] as? [String] ?? [])
        }
    }
}
