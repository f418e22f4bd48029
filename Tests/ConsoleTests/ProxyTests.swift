import Foundation
import LibPQ
import OutboxConsole
import TestSupport
import Testing

/// Behind the gateway's proxy: the SSO header and X-Forwarded-For are believed from trusted proxy
/// addresses only (the test's peer is 127.0.0.1).
@Suite struct ProxyTests {
    @Test func theSSOHeaderSignsInFromATrustedProxyOnly() async throws {
        try await RunningConsole.with({ $0.ssoHeader = "X-Forwarded-User"; $0.trustedProxies = ["127.0.0.1"] }) { console in
            try await console.addAccount("alice", role: .operator)
            let browser = console.browser()
            let page = try await browser.get("/", headers: [("X-Forwarded-User", "alice")])
            #expect(page.status == 200)
            #expect(page.body.contains("Signed in as alice, operator"))
            // It gets a session (so its forms carry a CSRF token), recorded as sso.
            #expect(browser.cookies["fc_console_session"] != nil)
            #expect(page.csrf?.isEmpty == false)
            let method = try await console.withDatabase {
                try await $0.query("SELECT method FROM flexcharge.console_sessions").first!.decode("method", as: String.self)
            }
            #expect(method == "sso")
            // A name with no account signs no one in.
            let stranger = console.browser()
            #expect(try await stranger.get("/", headers: [("X-Forwarded-User", "mallory")]).status == 303)
        }
        try await RunningConsole.with({ $0.ssoHeader = "X-Forwarded-User"; $0.trustedProxies = ["10.20.30.40"] }) { console in
            try await console.addAccount("alice", role: .operator)
            let browser = console.browser()
            #expect(try await browser.get("/", headers: [("X-Forwarded-User", "alice")]).status == 303)
            #expect(browser.cookies["fc_console_session"] == nil)
            #expect(console.logs.all.contains { $0.contains("SSO header ignored from an untrusted peer") })
        }
        // Off by default: the header means nothing.
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .operator)
            #expect(try await console.browser().get("/", headers: [("X-Forwarded-User", "alice")]).status == 303)
        }
    }

    @Test func behindATrustedProxyThrottlingCountsTheForwardedClient() async throws {
        try await RunningConsole.with({
            $0.trustedProxies = ["127.0.0.1"]
            $0.signInThrottle = SignInThrottle(perAccount: 10, perAddress: 2, window: .seconds(600))
        }) { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            func attempt(_ client: String, _ password: String) async throws -> Int {
                let form = try await browser.get("/login")
                return try await browser.post("/login", form: [("csrf", form.csrf ?? ""), ("name", "alice"), ("password", password)],
                                              headers: [("X-Forwarded-For", "198.51.100.7, \(client)")]).status
            }
            #expect(try await attempt("203.0.113.9", "wrong password one") == 401)
            #expect(try await attempt("203.0.113.9", "wrong password two") == 401)
            #expect(try await attempt("203.0.113.9", ConsoleTestData.password) == 429)
            let addresses = try await console.withDatabase {
                try await $0.query("SELECT DISTINCT address FROM flexcharge.console_signin_failures").rows.map { try $0.decode("address", as: String.self) }
            }
            #expect(addresses == ["203.0.113.9"])
            // Another client behind the same proxy is not held by the first one's failures.
            #expect(try await attempt("203.0.113.10", ConsoleTestData.password) == 303)
        }
    }

    @Test func signingInReturnsToThePageAskedFor() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("root", role: .admin)
            let browser = console.browser()
            let away = try await browser.get("/accounts?x=1")
            let location = try #require(away.header("Location"))
            let form = try await browser.get(location)
            let next = try #require(Browser.field("next", in: form.body))
            #expect(next == "/accounts?x=1")
            let answer = try await browser.post("/login", form: [("csrf", form.csrf ?? ""), ("next", next), ("name", "root"),
                                                                 ("password", ConsoleTestData.password)])
            #expect(answer.header("Location") == "/accounts?x=1")
        }
    }
}
