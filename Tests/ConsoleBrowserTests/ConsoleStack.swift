import AsyncHTTPClient
import Foundation
import LibPQ
import NIOCore
import Synchronization
import TestSupport

/// What the console's browser tests run, each a real process as in production: a migrated database of
/// the test's own, the FlexCharge simulator (`flexcharge-sandbox`), `flexcharge-outbox console`, and
/// `flexcharge-outbox worker` when asked for. Users and merchants are made with the CLI.
struct ConsoleStack: Sendable {
    static let mid = "00000000-0000-4000-8000-0000000000b1"
    static let appKey = "browser-app-key"
    static let appSecret = "browser-app-SECRET"
    static let tokenizationKey = "browser-tokenization-key"
    static let credentialsKey = Data(repeating: 11, count: 32).base64EncodedString()
    /// The password every test user gets (fed on stdin to `console user add`).
    static let password = "correct horse battery staple 7"

    let db: TestDatabase
    let session: PGSession
    let sandboxURL: String
    let consoleURL: String
    let sandbox: ChildProcess
    let console: ChildProcess
    /// Workers started for the test, stopped with it.
    let workers = ChildProcesses()

    /// Starts the simulator and the console on a new database for `body`; stops them after.
    /// `sandboxFaults` are the simulator's `--fault` rules (e.g. `POST /transmit=503#3`).
    static func with<T>(sandboxFaults: [String] = [], _ body: (ConsoleStack) async throws -> T) async throws -> T {
        try await TestDatabase.with { db in
            let session = db.session("browser-test")
            let sandboxPort = try freeTCPPort()
            var sandboxArguments = ["--port", String(sandboxPort), "--merchant", "\(mid):\(appKey):\(appSecret):\(tokenizationKey)",
                                    "--log-level", "warning"]
            for fault in sandboxFaults { sandboxArguments += ["--fault", fault] }
            let sandbox = try ChildProcess(PackagePaths.executable("flexcharge-sandbox"), sandboxArguments)
            let consolePort = try freeTCPPort()
            let console = try ChildProcess(
                PackagePaths.executable("flexcharge-outbox"),
                ["console", "--host", "127.0.0.1", "--port", String(consolePort), "--insecure-cookies", "--log-level", "warning"],
                environment: environment(db))
            let stack = ConsoleStack(db: db, session: session, sandboxURL: "http://127.0.0.1:\(sandboxPort)/v1/",
                                     consoleURL: "http://127.0.0.1:\(consolePort)", sandbox: sandbox, console: console)
            do {
                try await waitForHTTP(stack.sandboxURL, process: sandbox, name: "flexcharge-sandbox")
                try await waitForHTTP(stack.consoleURL + "/login", process: console, name: "flexcharge-outbox console")
                let value = try await body(stack)
                await stack.stop()
                return value
            } catch {
                await stack.stop()
                throw error
            }
        }
    }

    private func stop() async {
        for worker in workers.all { await worker.stop() }
        await console.stop()
        await sandbox.stop()
        await session.close()
    }

    /// The environment of every `flexcharge-outbox` process: this database and the credentials key.
    static func environment(_ db: TestDatabase) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") || $0.key == "PGCONNECT_TIMEOUT" }
        environment["DATABASE_URL"] = db.url
        environment["FLEXCHARGE_CREDENTIALS_KEY"] = credentialsKey
        return environment
    }

    /// Runs `flexcharge-outbox` with `arguments` (and stdin) to completion; throws when it fails.
    @discardableResult
    func cli(_ arguments: [String], stdin: String? = nil) async throws -> String {
        let result = await try ChildProcess(PackagePaths.executable("flexcharge-outbox"), arguments,
                                            environment: Self.environment(db), stdin: stdin).wait()
        guard result.status == 0 else {
            throw TestSupportError("flexcharge-outbox \(arguments.prefix(3).joined(separator: " ")) exited \(result.status): \(result.stderr.suffix(1500))")
        }
        return result.stdout
    }

    /// A console account (`console user add NAME --role ROLE`, the password on stdin).
    func addUser(_ name: String, role: String) async throws {
        try await cli(["console", "user", "add", name, "--role", role], stdin: Self.password + "\n")
    }

    /// A merchant with credentials for both environments of the simulator, added with the CLI.
    func enrol(_ merchant: String, name: String, citWebsite: String = "sandbox", citCallCenter: String = "off", mit: String = "off") async throws {
        try await cli(["merchant", "add", merchant, "--name", name, "--cit-website", citWebsite, "--cit-call-center", citCallCenter,
                       "--mit", mit, "--actor", "browser-test"])
        for environment in ["sandbox", "production"] {
            try await cli(["merchant", "credentials", merchant, "--environment", environment, "--mid", Self.mid, "--actor", "browser-test"],
                          stdin: "app_key=\(Self.appKey)\napp_secret=\(Self.appSecret)\ntokenization_key=\(Self.tokenizationKey)\n")
        }
    }

    /// Starts `flexcharge-outbox worker` against the simulator (both environments), quick retries.
    func startWorker(maxAttempts: Int = 5) throws -> ChildProcess {
        try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
            "worker", "--sandbox-url", sandboxURL, "--production-url", sandboxURL, "--http-port", "0", "--http-host", "127.0.0.1",
            "--poll-interval-ms", "100", "--backoff-base-ms", "20", "--backoff-cap-seconds", "0.2", "--max-attempts", String(maxAttempts),
            "--lease-seconds", "10", "--log-level", "warning",
        ], environment: Self.environment(db))
    }

    /// Polls until the SQL's first column is true.
    func waitUntil(_ sql: String, _ parameters: [any PGEncodable] = [], timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await session.query(sql, parameters).first?.decode(0, as: Bool.self) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("timed out after \(timeout) waiting for: \(sql)")
    }

    /// Waits until `url` answers HTTP at all (any status), while `process` runs.
    private static func waitForHTTP(_ url: String, process: ChildProcess, name: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw TestSupportError("\(name) exited: \(process.stderr.suffix(2000))") }
            if (try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("\(name) did not answer at \(url): \(process.stderr.suffix(2000))")
    }
}

/// Processes kept running until the stack stops.
final class ChildProcesses: Sendable {
    private let processes = Mutex<[ChildProcess]>([])
    func append(_ process: ChildProcess) { processes.withLock { $0.append(process) } }
    var all: [ChildProcess] { processes.withLock { $0 } }
}

extension Browser {
    /// Signs in on the console's sign-in page as `user` and waits for the signed-in layout.
    func signIn(_ stack: ConsoleStack, as user: String, password: String = ConsoleStack.password) async throws {
        try await open(stack.consoleURL + "/login")
        let form = try await waitFor("form[action='/login']")
        guard let name = try await find("input[name=name]", in: form), let secret = try await find("input[name=password]", in: form),
              let submit = try await find("button[type=submit], input[type=submit]", in: form)
        else { throw TestSupportError("the sign-in form has no username, password or submit: \(try await pageSource().prefix(2000))") }
        try await type(user, into: name)
        try await type(password, into: secret)
        try await click(submit)
        try await waitUntil("the signed-in page after sign-in as \(user)") {
            let url = try await currentURL()
            return try await find("form[action='/login']") == nil && url.hasPrefix(stack.consoleURL)
        }
    }
}
