import Foundation
import LibPQ
import OutboxConsole
import TestSupport
import Testing

/// `flexcharge-outbox console user …` as a process, and the console running as a console login.
@Suite struct ConsoleCommandTests {
    /// Runs the built binary with only `DATABASE_URL` from the test's choice.
    private func cli(_ arguments: [String], url: String, stdin: String? = nil) async throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") && $0.key != "DATABASE_URL" }
        environment["DATABASE_URL"] = url
        return await try ChildProcess(PackagePaths.executable("flexcharge-outbox"), arguments, environment: environment, stdin: stdin).wait()
    }

    @Test func userAddReadsThePasswordFromStdinAndStoresOnlyABcryptHash() async throws {
        try await RunningConsole.with { console in
            let password = "a long enough console password"
            let added = try await cli(["console", "user", "add", "alice", "--role", "admin", "--actor", "ops-lead"], url: console.db.url,
                                      stdin: password + "\n")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(added.stdout.contains("console account alice added (admin)"))
            #expect(!(added.stdout + added.stderr).contains(password))
            let row = try #require(try await console.withDatabase {
                try await $0.query("SELECT role, password_hash FROM flexcharge.console_accounts WHERE name = 'alice'").first
            })
            #expect(try row.decode("role", as: String.self) == "admin")
            let hash: String = try row.decode("password_hash")
            #expect(hash.hasPrefix("$2b$12$"))  // bcrypt, cost 12
            #expect(!hash.contains(password))
            let audit = try await console.withDatabase {
                try await $0.query("SELECT actor, action, new_value FROM flexcharge.console_audit WHERE subject = 'alice'").rows
            }
            #expect(try audit.map { try $0.decode("actor", as: String.self) } == ["ops-lead"])
            #expect(try audit.first?.decode("new_value", as: String.self) == "role admin, password set")
            // That password signs in to the console.
            let browser = console.browser()
            #expect(try await browser.signIn("alice", password: password).status == 303)
            #expect(try await browser.get("/accounts").status == 200)

            // Enrolment prints the otpauth URI; from then on a code is needed, and the URI's secret gives it.
            let totp = try await cli(["console", "user", "totp", "alice"], url: console.db.url)
            #expect(totp.status == 0, "\(totp.stderr)")
            let uri = totp.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(uri.hasPrefix("otpauth://totp/"))
            let fresh = console.browser()
            #expect(try await fresh.signIn("alice", password: password).status == 401)
            #expect(try await fresh.signIn("alice", password: password, code: TOTPCheck.code(secret: try TOTPTests.secret(of: uri))).status == 303)
            // The enrolment ended the session made without a code.
            #expect(try await browser.get("/").status == 303)

            let listed = try await cli(["console", "user", "list"], url: console.db.url)
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("alice"))
            #expect(listed.stdout.contains("enrolled"))
            #expect(!listed.stdout.contains("$2b$"))
        }
    }

    @Test func userAddRefusesAShortOrMissingPasswordAndABadRoleWithOneLine() async throws {
        try await RunningConsole.with { console in
            let short = try await cli(["console", "user", "add", "bob", "--role", "viewer"], url: console.db.url, stdin: "short\n")
            #expect(short.status == 2)
            #expect(short.stderr.contains("at least 12 characters"))
            #expect(!short.stderr.contains("short\n"))
            let none = try await cli(["console", "user", "add", "bob", "--role", "viewer"], url: console.db.url, stdin: "")
            #expect(none.status == 2)
            #expect(none.stderr.contains("stdin"))
            let role = try await cli(["console", "user", "add", "bob", "--role", "root"], url: console.db.url, stdin: "long enough password\n")
            #expect(role.status == 2)
            #expect(role.stderr.contains("viewer, operator or admin"))
            let name = try await cli(["console", "user", "add", "bob smith", "--role", "viewer"], url: console.db.url, stdin: "long enough password\n")
            #expect(name.status == 2)
            let count = try await console.withDatabase {
                try await $0.query("SELECT count(*) AS n FROM flexcharge.console_accounts").first!.decode("n", as: Int.self)
            }
            #expect(count == 0)
        }
    }

    @Test func helpTeachesAndPlainHTTPCookiesAreForLoopbackOnly() async throws {
        let help = try await cli(["console", "--help"], url: "")
        #expect(help.status == 0)
        for phrase in ["console user add", "--role", "flexcharge_console", "Secure", "--sso-header", "totp"] {
            #expect(help.stdout.contains(phrase), "console --help lacks \(phrase)")
        }
        let serve = try await cli(["console", "serve", "--help"], url: "")
        for option in ["--host", "--port", "--database-url", "--insecure-cookies", "--signin-failures-per-account", "--trusted-proxy"] {
            #expect(serve.stdout.contains(option), "console serve --help lacks \(option)")
        }
        let remote = try await cli(["console", "--host", "0.0.0.0", "--insecure-cookies"], url: "postgresql://127.0.0.1:1/none")
        #expect(remote.status == 2)
        #expect(remote.stderr.contains("loopback"))
        let sso = try await cli(["console", "--sso-header", "X-Forwarded-User"], url: "postgresql://127.0.0.1:1/none")
        #expect(sso.status == 2)
        #expect(sso.stderr.contains("--trusted-proxy"))
    }

    /// The console as 0037 says it runs: a login in flexcharge_console creates accounts, signs in and
    /// changes a role (the grants of the console's tables).
    @Test func theConsoleRunsAsAConsoleLogin() async throws {
        let login = "fc_t_console_\(UUID().uuidString.prefix(8).lowercased())"
        let password = UUID().uuidString
        try await RunningConsole.with({ _ in }, databaseURL: { db in
            let admin = db.session("roles")
            defer { Task { await admin.close() } }
            // DDL takes no parameters: the name is generated, the password a UUID.
            try await admin.execute("CREATE ROLE \(quotedIdentifier(login)) LOGIN PASSWORD '\(password)' IN ROLE flexcharge_console")
            return Self.url(db.url, user: login, password: password)
        }) { console in
            let consoleURL = Self.url(console.db.url, user: login, password: password)
            for (name, role) in [("root", "admin"), ("vera", "viewer")] {
                let added = try await cli(["console", "user", "add", name, "--role", role], url: consoleURL, stdin: ConsoleTestData.password + "\n")
                #expect(added.status == 0, "\(added.stderr)")
            }
            let browser = console.browser()
            #expect(try await browser.signIn("root").status == 303)
            #expect(try await browser.get("/accounts").status == 200)
            let changed = try await browser.post("/accounts/role", form: [("csrf", try await browser.csrfToken()), ("name", "vera"), ("role", "operator")])
            #expect(changed.status == 303)
            #expect(try await browser.post("/accounts/require-totp", form: [("csrf", try await browser.csrfToken()), ("required", "true")]).status == 303)
            #expect(try await browser.post("/logout", form: [("csrf", try await browser.csrfToken())]).status == 303)
            // Throttling's table too.
            #expect(try await console.browser().signIn("vera", password: "wrong password here").status == 401)
        }
        // Roles are the server's, not the database's: drop it from any database (its own is gone).
        try await TestDatabase.with { db in
            let cleanup = db.session("cleanup")
            _ = try? await cleanup.execute("DROP ROLE IF EXISTS \(quotedIdentifier(login))")
            await cleanup.close()
        }
    }

    /// An operator's CLI login is not the console's: its account commands and the server refuse it in one line
    /// naming the role to use (0037), and it added no account.
    @Test(.timeLimit(.minutes(1))) func anOperatorLoginIsRefusedTheConsolesAccounts() async throws {
        let login = "fc_t_ops_\(UUID().uuidString.prefix(8).lowercased())"
        let password = UUID().uuidString
        try await TestDatabase.with { db in
            let admin = db.session("roles")
            defer { Task { await admin.close() } }
            try await admin.execute("CREATE ROLE \(quotedIdentifier(login)) LOGIN PASSWORD '\(password)' IN ROLE flexcharge_operator")
            let operatorURL = Self.url(db.url, user: login, password: password)
            let added = try await cli(["console", "user", "add", "mallory", "--role", "admin"], url: operatorURL,
                                      stdin: ConsoleTestData.password + "\n")
            let listed = try await cli(["console", "user", "list"], url: operatorURL)
            let served = try await cli(["console", "--port", "0", "--insecure-cookies"], url: operatorURL)
            for (what, result) in [("add", added), ("list", listed), ("serve", served)] {
                #expect(result.status == 1, "\(what): \(result.status) \(result.stderr)")
                #expect(result.stderr.contains("flexcharge_console") && result.stderr.split(separator: "\n").count == 1,
                        "\(what): \(result.stderr)")
            }
            let accounts = try await admin.query("SELECT count(*)::int AS n FROM flexcharge.console_accounts").first!.decode("n", as: Int.self)
            #expect(accounts == 0)
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(quotedIdentifier(login))")
        }
    }

    static func url(_ base: String, user: String, password: String) -> String {
        if var components = URLComponents(string: base), base.contains("://") {
            components.user = user
            components.password = password
            return components.string ?? base
        }
        return base + " user=\(user) password=\(password)"
    }
}
