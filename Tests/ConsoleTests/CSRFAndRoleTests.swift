import Foundation
import LibPQ
import OutboxConsole
import Testing

/// Forms need the session's CSRF token; actions need their role; every answer carries the security headers.
@Suite struct CSRFAndRoleTests {
    /// The role of `name` as stored.
    private func role(_ console: RunningConsole, _ name: String) async throws -> String {
        try await console.withDatabase {
            try await $0.query("SELECT role FROM flexcharge.console_accounts WHERE name = $1", [name]).first!.decode("role")
        }
    }

    @Test func aPostWithoutTheSessionsCSRFTokenIsRefused() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("root", role: .admin)
            try await console.addAccount("carol", role: .viewer)
            let admin = console.browser()
            try await admin.signIn("root")
            // No token, a wrong token, and another session's token: 403, nothing changed.
            let other = console.browser()
            try await other.signIn("root")
            let othersToken = try await other.csrfToken()
            for token in [nil, "forged", othersToken] {
                var form = [("name", "carol"), ("role", "admin")]
                if let token { form.append(("csrf", token)) }
                let answer = try await admin.post("/accounts/role", form: form)
                #expect(answer.status == 403)
                #expect(answer.body.contains("did not come from the console"))
            }
            #expect(try await role(console, "carol") == "viewer")
            // The sign-in form refuses a POST without its double-submit token too.
            let stranger = console.browser()
            let refused = try await stranger.post("/login", form: [("name", "root"), ("password", ConsoleTestData.password)])
            #expect(refused.status == 403)
            #expect(stranger.cookies["fc_console_session"] == nil)
            // With the token the change is made and audited under the signed-in admin.
            let done = try await admin.post("/accounts/role", form: [("csrf", try await admin.csrfToken()), ("name", "carol"), ("role", "operator")])
            #expect(done.status == 303)
            #expect(try await role(console, "carol") == "operator")
            let audit = try await console.withDatabase {
                try await $0.query("SELECT actor, old_value, new_value FROM flexcharge.console_audit WHERE action = 'set role'").rows
            }
            #expect(audit.count == 1)
            #expect(try audit.first?.decode("actor", as: String.self) == "console:root")
            #expect(try audit.first?.decode("new_value", as: String.self) == "operator")
            // The notice of the action shows once on the next page.
            let after = try await admin.get("/accounts")
            #expect(after.body.contains("carol is now operator."))
            #expect(!(try await admin.get("/accounts")).body.contains("carol is now operator."))
        }
    }

    @Test func aViewerIsRefusedAnAdminAction() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("vera", role: .viewer)
            try await console.addAccount("otto", role: .operator)
            for name in ["vera", "otto"] {
                let browser = console.browser()
                try await browser.signIn(name)
                let page = try await browser.get("/accounts")
                #expect(page.status == 403)
                let answer = try await browser.post("/accounts/role", form: [("csrf", try await browser.csrfToken()), ("name", name), ("role", "admin")])
                #expect(answer.status == 403)
                #expect(answer.body.contains("This needs the admin role"))
                #expect(try await role(console, name) != "admin")
                // The menu does not offer what the role cannot open.
                #expect(try await browser.get("/").status == 200)
            }
            let audit = try await console.withDatabase {
                try await $0.query("SELECT count(*) AS n FROM flexcharge.console_audit WHERE action = 'set role'").first!.decode("n", as: Int.self)
            }
            #expect(audit == 0)
        }
    }

    @Test func everyAnswerCarriesTheSecurityHeaders() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .viewer)
            let browser = console.browser()
            let signInPage = try await browser.get("/login")
            try await browser.signIn("alice")
            let home = try await browser.get("/")
            for page in [signInPage, home] {
                let csp = try #require(page.header("Content-Security-Policy"))
                #expect(csp.contains("frame-ancestors 'none'"))
                #expect(csp.contains("script-src 'self' 'nonce-"))
                #expect(!csp.contains("unsafe-inline"))
                #expect(page.header("X-Frame-Options") == "DENY")
                #expect(page.header("X-Content-Type-Options") == "nosniff")
                #expect(page.header("Cache-Control") == "no-store")
                #expect(page.body.contains("<main id=\"main\""))
                #expect(page.body.contains("href=\"#main\""))
                #expect(!page.body.contains("style=\""))
                #expect(!page.body.contains("onclick"))
            }
            // Each response has its own nonce.
            let again = try await browser.get("/")
            #expect(again.header("Content-Security-Policy") != home.header("Content-Security-Policy"))
            let css = try await browser.get("/static/console.css")
            #expect(css.status == 200)
            #expect(css.header("Content-Type")?.hasPrefix("text/css") == true)
        }
    }

    @Test func textFromTheDatabaseIsEscaped() async throws {
        let html: HTML = "<td>\("<script>alert('x')</script> & \"q\"")</td>"
        #expect(html.markup == "<td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</td>")
        let nested: HTML = "<tr>\([HTML("<td>1</td>"), "<td>\(2)</td>"])</tr>"
        #expect(nested.markup == "<tr><td>1</td><td>2</td></tr>")
    }
}
