import Foundation
import LibPQ
import OutboxConsole
import TestSupport
import Testing

/// Sign-in, sessions and sign-out over real HTTP against a real PostgreSQL.
@Suite struct SignInTests {
    @Test func aGoodPasswordSignsInWithAStrictHttpOnlyCookieAndABadOneDoesNot() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            // Not signed in: pages send you to the sign-in page, which comes back to them.
            let away = try await browser.get("/accounts")
            #expect(away.status == 303)
            #expect(away.header("Location")?.hasPrefix("/login?next=") == true)

            let wrong = try await browser.signIn("alice", password: "not the password at all")
            #expect(wrong.status == 401)
            #expect(wrong.body.contains("That name, password or code is not right."))
            #expect(browser.cookies["fc_console_session"] == nil)
            // An unknown account gets the same answer (it does not say which part was wrong).
            let unknown = try await browser.signIn("nobody", password: ConsoleTestData.password)
            #expect(unknown.status == 401)
            #expect(unknown.body.contains("That name, password or code is not right."))

            let signedIn = try await browser.signIn("alice")
            #expect(signedIn.status == 303)
            #expect(signedIn.header("Location") == "/")
            let line = try #require(browser.setCookieLines.last { $0.hasPrefix("fc_console_session=") })
            #expect(line.contains("HttpOnly"))
            #expect(line.contains("SameSite=Strict"))
            #expect(line.contains("Path=/"))
            #expect(!line.contains("Secure"))  // this test console was configured without (loopback http)
            let home = try await browser.get("/")
            #expect(home.status == 200)
            #expect(home.body.contains("Signed in as alice, viewer"))
            // The database keeps the token's SHA-256, never the token.
            let token = try #require(browser.cookies["fc_console_session"])
            let stored = try await console.withDatabase { session in
                try await session.query("SELECT encode(token_hash, 'hex') AS h FROM flexcharge.console_sessions").rows.map { try $0.decode("h", as: String.self) }
            }
            #expect(stored.count == 1)
            #expect(!stored.contains { $0.contains(token) })
            // Failed attempts are counted; the good one cleared the account's.
            let failures = try await console.withDatabase { session in
                try await session.query("SELECT count(*) AS n FROM flexcharge.console_signin_failures WHERE account_name = 'alice'").first!.decode("n", as: Int.self)
            }
            #expect(failures == 0)
            // No password in the console's log lines.
            #expect(!console.logs.all.contains { $0.contains(ConsoleTestData.password) || $0.contains("not the password") })
        }
    }

    @Test func secureCookiesCarryTheSecureAttribute() async throws {
        try await RunningConsole.with({ $0.secureCookies = true }) { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            let form = try await browser.get("/login")
            #expect(browser.setCookieLines.contains { $0.hasPrefix("fc_console_signin=") && $0.contains("Secure") })
            let answer = try await browser.post("/login", form: [("csrf", form.csrf ?? ""), ("name", "alice"), ("password", ConsoleTestData.password)])
            #expect(answer.status == 303)
            let line = try #require(browser.setCookieLines.last { $0.hasPrefix("fc_console_session=") })
            #expect(line.contains("Secure"))
            #expect(line.contains("HttpOnly"))
            #expect(line.contains("SameSite=Strict"))
        }
    }

    @Test func signOutEndsTheSessionOnTheServer() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("alice")
            let token = try #require(browser.cookies["fc_console_session"])
            let out = try await browser.post("/logout", form: [("csrf", try await browser.csrfToken())])
            #expect(out.status == 303)
            #expect(out.header("Location") == "/login")
            // The old cookie, replayed, no longer signs anyone in.
            let replay = console.browser()
            let page = try await replay.get("/", headers: [("Cookie", "fc_console_session=\(token)")])
            #expect(page.status == 303)
            let rows = try await console.withDatabase { try await $0.query("SELECT count(*) AS n FROM flexcharge.console_sessions").first!.decode("n", as: Int.self) }
            #expect(rows == 0)
        }
    }

    @Test func anExpiredOrIdleSessionNoLongerSignsIn() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("alice")
            #expect(try await browser.get("/").status == 200)
            try await console.withDatabase { _ = try await $0.execute("UPDATE flexcharge.console_sessions SET last_seen_at = now() - interval '2 hours'") }
            #expect(try await browser.get("/").status == 303)
        }
    }

    @Test func signInIsThrottledPerAccountAndPerAddress() async throws {
        try await RunningConsole.with({ $0.signInThrottle = SignInThrottle(perAccount: 3, perAddress: 5, window: .seconds(600)) }) { console in
            try await console.addAccount("alice", role: .viewer)
            try await console.addAccount("bob", role: .viewer)
            let browser = console.browser()
            for _ in 0..<3 { #expect(try await browser.signIn("alice", password: "wrong password here").status == 401) }
            // Over the account's limit even the right password is refused, with Retry-After.
            let held = try await browser.signIn("alice")
            #expect(held.status == 429)
            #expect(Int(held.header("Retry-After") ?? "") ?? 0 > 0)
            #expect(browser.cookies["fc_console_session"] == nil)
            // Another account from the same address still signs in until the address's limit…
            #expect(try await browser.signIn("bob", password: "wrong password here").status == 401)
            #expect(try await browser.signIn("bob", password: "wrong password again").status == 401)
            // …which is now reached (5 failures from 127.0.0.1): bob is refused too.
            #expect(try await browser.signIn("bob").status == 429)
            // When the window has passed, alice signs in.
            try await console.withDatabase { _ = try await $0.execute("UPDATE flexcharge.console_signin_failures SET at = at - interval '11 minutes'") }
            #expect(try await browser.signIn("alice").status == 303)
        }
    }

    @Test func aDisabledAccountCannotSignInAndItsSessionsEnd() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("alice")
            try await console.withDatabase { try await ConsoleAccounts(session: $0, actor: "test").setDisabled("alice", true) }
            #expect(try await browser.get("/").status == 303)
            #expect(try await browser.signIn("alice").status == 401)
        }
    }

    @Test func signInOnlyRedirectsWithinTheConsole() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            let form = try await browser.get("/login?next=//evil.example/")
            let answer = try await browser.post("/login", form: [
                ("csrf", form.csrf ?? ""), ("next", "//evil.example/"), ("name", "alice"), ("password", ConsoleTestData.password),
            ])
            #expect(answer.status == 303)
            #expect(answer.header("Location") == "/")
        }
    }
}
