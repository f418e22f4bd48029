import AsyncHTTPClient
import Foundation
import Hummingbird
import LibPQ
import Logging
import NIOCore
import NIOHTTP1
import OutboxConsole
import ServiceLifecycle
import TestSupport

/// The console served in-process on 127.0.0.1 (an ephemeral port) over a fresh migrated database,
/// with plain-HTTP cookies (loopback tests only), as `flexcharge-outbox console --insecure-cookies` does.
struct RunningConsole {
    let port: Int
    let db: TestDatabase
    let logs: LogRecorder
    private let group: ServiceGroup
    private let task: Task<Void, Never>
    private let pool: PGPool

    /// Runs `body` with a console over a new database; `configure` adjusts the configuration.
    static func with<T>(
        _ configure: (inout ConsoleConfiguration) -> Void = { _ in },
        databaseURL: ((TestDatabase) async throws -> String)? = nil,
        _ body: (RunningConsole) async throws -> T
    ) async throws -> T {
        try await TestDatabase.with { db in
            let console = try await start(db, configure, url: try await databaseURL?(db) ?? db.url)
            do {
                let value = try await body(console)
                await console.stop()
                return value
            } catch {
                await console.stop()
                throw error
            }
        }
    }

    private static func start(_ db: TestDatabase, _ configure: (inout ConsoleConfiguration) -> Void, url: String) async throws -> RunningConsole {
        var configuration = ConsoleConfiguration(host: "127.0.0.1", port: 0, secureCookies: false)
        configure(&configuration)
        let logs = LogRecorder()
        let pool = PGPool(configuration: PGConfiguration(url: url, applicationName: "console-tests"), size: 3, name: "console-tests")
        let services = ConsoleServices(pool: pool, logger: logs.logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = ConsoleServer.application(configuration: configuration, services: services) { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "silent", factory: { _ in SwiftLogNoOpLogHandler() })))
        let task = Task { do { try await group.run() } catch { continuation.finish() } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw TestSupportError("console did not start") }
        return RunningConsole(port: port, db: db, logs: logs, group: group, task: task, pool: pool)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
        await pool.close()
    }

    /// Adds an account straight through the store (bcrypt cost 4: quick; hashes carry their cost).
    func addAccount(_ name: String, role: ConsoleRole, password: String = ConsoleTestData.password) async throws {
        let session = db.session("console-accounts")
        defer { Task { await session.close() } }
        try await ConsoleAccounts(session: session, actor: "test").add(name, role: role, password: password, cost: 4)
    }

    /// Runs `body` with a session on the console's database.
    func withDatabase<T: Sendable>(_ body: (PGSession) async throws -> T) async throws -> T {
        let session = db.session("console-check")
        do {
            let value = try await body(session)
            await session.close()
            return value
        } catch {
            await session.close()
            throw error
        }
    }

    /// A new browser (its own cookies) for this console.
    func browser() -> Browser { Browser(port: port) }
}

enum ConsoleTestData {
    static let password = "correct horse battery staple"
}

/// A minimal browser over AsyncHTTPClient: keeps cookies (by name), does not follow redirects, sends
/// forms url-encoded, and keeps every Set-Cookie line it was sent (to check their attributes).
final class Browser: @unchecked Sendable {
    let port: Int
    /// One client for the test process (never shut down, so never deinitialised while open).
    private static let sharedClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    private var client: HTTPClient { Self.sharedClient }
    private(set) var cookies: [String: String] = [:]
    private(set) var setCookieLines: [String] = []

    init(port: Int) { self.port = port }

    struct Page {
        let status: Int
        let headers: [(String, String)]
        let body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

        /// The value of the first hidden `csrf` field.
        var csrf: String? { Browser.field("csrf", in: body) }
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> Page {
        try await send("GET", path, headers: headers, body: nil)
    }

    func post(_ path: String, form: [(String, String)], headers: [(String, String)] = []) async throws -> Page {
        let body = form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return try await send("POST", path, headers: headers + [("Content-Type", "application/x-www-form-urlencoded")], body: body)
    }

    /// Signs in through the form, as a person would: GET /login, then POST it with its CSRF field.
    @discardableResult
    func signIn(_ name: String, password: String = ConsoleTestData.password, code: String? = nil) async throws -> Page {
        let form = try await get("/login")
        var fields = [("csrf", form.csrf ?? ""), ("next", "/"), ("name", name), ("password", password)]
        if let code { fields.append(("code", code)) }
        return try await post("/login", form: fields)
    }

    /// The CSRF token of a signed-in page (the sign-out form carries it).
    func csrfToken() async throws -> String {
        guard let token = try await get("/").csrf else { throw TestSupportError("no csrf field on the home page") }
        return token
    }

    private func send(_ method: String, _ path: String, headers: [(String, String)], body: String?) async throws -> Page {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        for line in response.headers["Set-Cookie"] {
            setCookieLines.append(line)
            let pair = line.split(separator: ";", maxSplits: 1)[0].split(separator: "=", maxSplits: 1)
            let name = String(pair[0]).trimmingCharacters(in: .whitespaces)
            let value = pair.count > 1 ? String(pair[1]) : ""
            if value.isEmpty || line.lowercased().contains("max-age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
        return Page(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: bytes))
    }

    /// The value attribute of the first `<input … name="NAME" value="…">`.
    static func field(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = html[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
