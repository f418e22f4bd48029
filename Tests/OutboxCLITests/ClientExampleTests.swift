import Foundation
import LibPQ
import Testing
import TestSupport

/// The gateway examples of `examples/` (Python with psycopg 3, Java with JDBC, Go with lib/pq), each run
/// as a real client against a fresh database migrated by `flexcharge-outbox migrate`, logged in as a
/// gateway login (a member of `flexcharge_gateway` only), with a real worker delivering to the sandbox
/// simulator: the example's transaction writes the payment row and the evaluate together, LISTENs, and
/// reports the outcome the worker wrote. Run again with the same order, it inserts nothing (dedupe_key)
/// and FlexCharge is not called a second time. The toolchains come from Debian's packages
/// (scripts/ensure-deps.sh installs them).
@Suite struct ClientExampleTests {
    enum Language: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case python, java, go
        var testDescription: String { rawValue }
    }

    @Test(arguments: Language.allCases)
    func theExampleRecordsAPaymentWithItsEvaluateAndWaitsForTheOutcome(_ language: Language) async throws {
        try await ExampleWorld.with(language) { world in
            let order = "ex-\(language.rawValue)-1"
            let first = try await world.runExample(merchant: "shoes", order: order, amountCents: 1500)
            #expect(first.status == 0, "\(first.stderr)\(first.stdout)")
            let reported = try #require(Self.report(first.stdout), "\(first.stdout)\(first.stderr)")
            #expect(reported["inserted"] as? Bool == true)
            #expect(reported["state"] as? String == "succeeded")
            #expect(reported["decision"] as? String == "APPROVED")
            let eventID = try #require((reported["event_id"] as? NSNumber)?.int64Value)

            // What the database holds is what the example reported: one payment, one event, one call.
            let admin = world.database.session("example-check")
            defer { Task { await admin.close() } }
            let event = try #require(try await admin.query(
                """
                SELECT id, state, decision, order_session_key, dedupe_key, attempts, amount_cents
                  FROM flexcharge.outbox WHERE merchant_id = 'shoes' AND order_id = $1
                """, [order]).first)
            #expect(try event.decode("id", as: Int64.self) == eventID)
            #expect(try event.decode("state", as: String.self) == "succeeded")
            #expect(try event.decode("dedupe_key", as: String?.self) == "\(order)/evaluate")
            #expect(try event.decode("amount_cents", as: Int?.self) == 1500)
            #expect(try event.decode("attempts", as: Int.self) == 1)
            let sessionKey = try event.decode("order_session_key", as: String?.self)
            #expect(sessionKey != nil && reported["order_session_key"] as? String == sessionKey)
            let payment = try #require(try await admin.query(
                "SELECT amount_cents, status FROM \(quotedIdentifier(world.gatewayLogin)).payments WHERE merchant_id = 'shoes' AND order_id = $1",
                [order]).first)
            #expect(try payment.decode("amount_cents", as: Int.self) == 1500)
            #expect(try payment.decode("status", as: String.self) == "declined")

            // The gateway retries the whole transaction (it lost the answer to COMMIT): nothing new.
            let again = try await world.runExample(merchant: "shoes", order: order, amountCents: 1500)
            #expect(again.status == 0, "\(again.stderr)\(again.stdout)")
            let second = try #require(Self.report(again.stdout), "\(again.stdout)\(again.stderr)")
            #expect(second["inserted"] as? Bool == false)
            #expect((second["event_id"] as? NSNumber)?.int64Value == eventID)
            #expect(second["state"] as? String == "succeeded" && second["order_session_key"] as? String == sessionKey)
            let counts = try #require(try await admin.query(
                """
                SELECT (SELECT count(*) FROM flexcharge.outbox) AS events,
                       (SELECT count(*) FROM flexcharge.attempts) AS calls,
                       (SELECT count(*) FROM \(quotedIdentifier(world.gatewayLogin)).payments) AS payments
                """).first)
            #expect(try counts.decode("events", as: Int.self) == 1)
            #expect(try counts.decode("calls", as: Int.self) == 1)
            #expect(try counts.decode("payments", as: Int.self) == 1)

            // The worker that settled it exports every metric the alerts and the dashboard of deploy/ use
            // (but serve's own, which ServeMetricsTests checks against serve), and the queue gauges of every
            // lane (0 now: the queue drained).
            let metrics = try await world.scrapeWorkerMetrics()
            let exported = Set(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }
                .map { String($0.prefix { $0 != "{" && $0 != " " }) })
            for file in ["deploy/prometheus/flexcharge-outbox-rules.yml", "deploy/grafana/flexcharge-outbox.json"] {
                let text = try String(contentsOfFile: PackagePaths.root + "/" + file, encoding: .utf8)
                let used = Set(text.matches(of: /flexcharge_outbox_[a-z_]+/).map { String($0.output) }
                    .filter { !$0.hasPrefix("flexcharge_outbox_serve_") })
                #expect(!used.isEmpty && used.isSubset(of: exported), "\(file): \(used.subtracting(exported).sorted()) not in /metrics")
            }
            for lane in ["cit_evaluate", "mit_evaluate", "follow_up", "transmit"] {
                #expect(metrics.contains("flexcharge_outbox_oldest_pending_seconds{lane=\"\(lane)\"} 0"), "\(lane)")
            }
        }
    }

    /// The example's one JSON line.
    static func report(_ stdout: String) -> [String: Any]? {
        guard let line = stdout.split(separator: "\n").last else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

/// A fresh database migrated by the CLI, a gateway login with a schema of its own (where the example
/// creates its `payments` table), an enrolled merchant, the sandbox simulator and a worker; all removed
/// afterwards.
struct ExampleWorld: Sendable {
    let language: ClientExampleTests.Language
    let database: TestDatabase
    let gatewayLogin: String
    let gatewayPassword: String
    /// Where the example's build went (Java classes, the Go binary).
    let buildDirectory: String
    /// The worker's /healthz, /readyz and /metrics port.
    let metricsPort: Int

    static let examples = PackagePaths.root + "/examples"
    static let mid = "00000000-0000-4000-8000-000000000001"

    static func with(_ language: ClientExampleTests.Language, _ body: (ExampleWorld) async throws -> Void) async throws {
        try await TestDatabase.withEmpty { database in
            // The migrations compiled into the binary, as a gateway's release would apply them.
            let migrate = try await runCLI(["migrate", "--database-url", database.url])
            try #require(migrate.status == 0, "\(migrate.stderr)")

            let login = "fc_example_\(language.rawValue)_\(UUID().uuidString.prefix(8).lowercased())"
            let password = UUID().uuidString
            let admin = database.session("example-admin")
            // DDL takes no parameters: the name is quoted, the password is a UUID.
            try await admin.execute(
                "CREATE ROLE \(quotedIdentifier(login)) LOGIN PASSWORD '\(password)' IN ROLE flexcharge_gateway")
            let build = NSTemporaryDirectory() + "flexcharge-example-\(UUID().uuidString.prefix(8))"
            var processes: [ChildProcess] = []
            do {
                // A schema named after the login: its default search_path puts `payments` there.
                try await admin.execute("CREATE SCHEMA AUTHORIZATION \(quotedIdentifier(login))")
                let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
                let operatorEnv = ["DATABASE_URL": database.url, "FLEXCHARGE_CREDENTIALS_KEY": key]
                let added = try await runCLI(["merchant", "add", "shoes", "--cit-website", "sandbox", "--actor", "test"],
                                             environment: operatorEnv)
                try #require(added.status == 0, "\(added.stderr)")
                let stored = try await runCLI(
                    ["merchant", "credentials", "shoes", "--environment", "sandbox", "--mid", mid, "--actor", "test"],
                    environment: operatorEnv,
                    stdin: "app_key=demo-app-key\napp_secret=demo-app-secret\ntokenization_key=demo-tokenization-key\n")
                try #require(stored.status == 0, "\(stored.stderr)")

                let port = try freeTCPPort()
                let sandbox = try ChildProcess(PackagePaths.executable("flexcharge-sandbox"),
                                               ["--port", String(port), "--log-level", "warning"])
                processes.append(sandbox)
                try await waitForPort(port, process: sandbox)
                var workerEnv = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
                workerEnv.merge(operatorEnv) { $1 }
                let metricsPort = try freeTCPPort()
                processes.append(try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                    "worker", "--sandbox-url", "http://127.0.0.1:\(port)/v1/", "--http-port", String(metricsPort),
                    "--http-host", "127.0.0.1", "--log-level", "warning",
                ], environment: workerEnv))

                try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
                let world = ExampleWorld(language: language, database: database, gatewayLogin: login,
                                         gatewayPassword: password, buildDirectory: build, metricsPort: metricsPort)
                try await world.buildExample()
                try await body(world)
            } catch {
                await cleanUp(processes: processes, admin: admin, login: login, build: build)
                throw error
            }
            await cleanUp(processes: processes, admin: admin, login: login, build: build)
        }
    }

    private static func cleanUp(processes: [ChildProcess], admin: PGSession, login: String, build: String) async {
        for process in processes.reversed() {
            process.send(SIGTERM)
            _ = await process.wait()
        }
        _ = try? await admin.execute("DROP OWNED BY \(quotedIdentifier(login)) CASCADE")
        _ = try? await admin.execute("DROP ROLE IF EXISTS \(quotedIdentifier(login))")
        await admin.close()
        try? FileManager.default.removeItem(atPath: build)
    }

    /// Waits until the sandbox accepts connections (so the worker's first call does not fail).
    private static func waitForPort(_ port: Int, process: ChildProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            try #require(process.isRunning, "flexcharge-sandbox exited: \(process.stderr)")
            if let fd = LoopbackHTTP.connect(port) {
                close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("flexcharge-sandbox did not listen on port \(port) within 60 s")
    }

    /// GET /metrics of the worker, once the queue gauges are there (the worker publishes them when it
    /// starts, then every 10 s).
    func scrapeWorkerMetrics() async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        var body = ""
        while ContinuousClock.now < deadline {
            body = LoopbackHTTP.request("GET", "/metrics", port: metricsPort)?.body ?? ""
            if body.contains("flexcharge_outbox_queue_depth") { return body }
            try await Task.sleep(for: .milliseconds(500))
        }
        return body
    }

    /// The database URL of the gateway login (a URL, as the test server's).
    var gatewayURL: URLComponents {
        get throws {
            guard var components = URLComponents(string: database.url), database.url.contains("://") else {
                throw TestSupportError("ClientExampleTests needs DATABASE_URL as a postgresql:// URL")
            }
            components.user = gatewayLogin
            components.password = gatewayPassword
            return components
        }
    }

    /// The environment of a toolchain command: this process's, without any database setting.
    private var baseEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") && $0.key != "DATABASE_URL" }
    }

    /// Go builds in GOPATH mode against Debian's lib/pq (golang-github-lib-pq-dev): nothing is downloaded.
    private var goEnvironment: [String: String] {
        baseEnvironment.merging([
            "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOPROXY": "off", "GOFLAGS": "",
            "GOCACHE": NSTemporaryDirectory() + "flexcharge-go-cache",
        ]) { $1 }
    }

    /// Compiles the Java and Go examples (Python needs nothing).
    func buildExample() async throws {
        switch language {
        case .python:
            let check = try await run("/usr/bin/python3", ["-c", "import psycopg"], in: Self.examples + "/python")
            try #require(check.status == 0, "Debian's python3-psycopg is missing (scripts/ensure-deps.sh): \(check.stderr)")
        case .java:
            let javac = try await run("javac", ["-Xlint:all", "-Werror", "-cp", "/usr/share/java/postgresql.jar", "-d", buildDirectory,
                                                "GatewayExample.java"], in: Self.examples + "/java")
            try #require(javac.status == 0, "javac (scripts/ensure-deps.sh installs a JDK and the JDBC driver): \(javac.stderr)")
        case .go:
            let vet = try await run("go", ["vet", "."], in: Self.examples + "/go", environment: goEnvironment)
            try #require(vet.status == 0, "go vet (scripts/ensure-deps.sh installs Go and lib/pq): \(vet.stderr)")
            let built = try await run("go", ["build", "-o", buildDirectory + "/gateway-example", "."], in: Self.examples + "/go",
                                      environment: goEnvironment)
            try #require(built.status == 0, "go build: \(built.stderr)")
        }
    }

    /// Runs the example once, as the gateway login; it waits up to 90 s for the outcome.
    func runExample(merchant: String, order: String, amountCents: Int) async throws -> ProcessResult {
        let arguments = [merchant, order, String(amountCents)]
        var url = try gatewayURL
        var environment = baseEnvironment.merging(["WAIT_SECONDS": "90"]) { $1 }
        switch language {
        case .python:
            environment["DATABASE_URL"] = url.string
            return try await run("/usr/bin/python3", ["gateway_example.py"] + arguments, in: Self.examples + "/python",
                                 environment: environment)
        case .java:
            var jdbc = URLComponents()
            jdbc.host = url.host
            jdbc.port = url.port
            jdbc.path = url.path
            jdbc.queryItems = [URLQueryItem(name: "user", value: gatewayLogin), URLQueryItem(name: "password", value: gatewayPassword)]
            environment["JDBC_URL"] = "jdbc:postgresql:" + (jdbc.string ?? "")
            return try await run("java", ["-cp", buildDirectory + ":/usr/share/java/postgresql.jar", "GatewayExample"] + arguments,
                                 in: Self.examples + "/java", environment: environment)
        case .go:
            // lib/pq asks for TLS unless told otherwise; the test server has none.
            url.queryItems = (url.queryItems ?? []) + [URLQueryItem(name: "sslmode", value: "disable")]
            environment["DATABASE_URL"] = url.string
            return try await run(buildDirectory + "/gateway-example", arguments, in: Self.examples + "/go", environment: environment)
        }
    }

    /// Runs `command` (looked up in PATH) in `directory`, the examples' own folder (they find
    /// ../declined-payment.json from there).
    private func run(_ command: String, _ arguments: [String], in directory: String,
                     environment: [String: String]? = nil) async throws -> ProcessResult {
        try await ChildProcess("/bin/sh", ["-c", #"cd "$1" && shift && exec "$@""#, "sh", directory, command] + arguments,
                               environment: environment ?? baseEnvironment).wait()
    }
}
