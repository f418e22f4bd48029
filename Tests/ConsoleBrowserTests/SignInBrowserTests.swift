import Foundation
import LibPQ
import Testing
import TestSupport

/// Signing in and out of the console in headless Chromium, and a forged form refused.
@Suite(.serialized, .enabled(if: ChromeDriver.shouldRun, ChromeDriver.skipReason))
struct SignInBrowserTests {
    @Test func aUserSignsInSeesTheirNameAndRoleAndSignsOut() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("olivia", role: "operator")
            try await ChromeDriver.withBrowser { browser in
                // A page of the console, signed out: sent to the sign-in form.
                try await browser.open(stack.consoleURL + "/")
                _ = try await browser.waitFor("form[action='/login']")
                #expect(try await browser.currentURL().contains("/login"))

                try await browser.signIn(stack, as: "olivia")
                let who = try await browser.text(try await browser.waitFor(".who"))
                #expect(who.contains("olivia") && who.contains("operator"), "signed-in header: \(who)")
                // The session cookie is HttpOnly (no script reads it) and SameSite.
                let cookies = try await browser.cookies()
                let session = cookies.first { ($0["httpOnly"] as? Bool) == true && ($0["name"] as? String)?.contains("session") == true }
                #expect(session != nil, "no HttpOnly session cookie among \(cookies.compactMap { $0["name"] })")
                #expect((session?["sameSite"] as? String).map { ["Strict", "Lax"].contains($0) } == true)
                let visible = try await browser.execute("return document.cookie") as? String ?? ""
                #expect(!visible.contains((session?["value"] as? String) ?? "-"), "the session cookie is readable by scripts")

                // Sign out: back to the sign-in form, and a console page asks to sign in again.
                try await browser.click(try await browser.waitFor(".who form[action='/logout'] button"))
                _ = try await browser.waitFor("form[action='/login']")
                try await browser.open(stack.consoleURL + "/")
                _ = try await browser.waitFor("form[action='/login']")
            }
            let audit = try await stack.session.query(
                "SELECT count(*) AS n FROM flexcharge.console_audit WHERE actor LIKE '%olivia%' AND action = 'sign-out'").first!
            #expect(try audit.decode("n", as: Int.self) == 1)
        }
    }

    @Test func aWrongPasswordIsRefusedWithAMessageOnTheForm() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("victor", role: "viewer")
            try await ChromeDriver.withBrowser { browser in
                try await browser.open(stack.consoleURL + "/login")
                let form = try await browser.waitFor("form[action='/login']")
                try await browser.type("victor", into: try #require(try await browser.find("input[name=name]", in: form)))
                try await browser.type("not the password", into: try #require(try await browser.find("input[name=password]", in: form)))
                try await browser.click(try #require(try await browser.find("button[type=submit]", in: form)))
                let alert = try await browser.waitFor("[role=alert]")
                #expect(try await browser.text(alert).contains("not right"))
                #expect(try await browser.find(".who") == nil, "a wrong password signed in")
            }
        }
    }

    /// A form whose CSRF token was taken out (what a forged cross-site form looks like to the console)
    /// is refused with 403, and the action does not happen: still signed in after the refused sign-out.
    @Test func aFormWithoutItsCSRFTokenIsRefused() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("olivia", role: "operator")
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "olivia")
                let status = try await browser.executeAsync(
                    """
                    const done = arguments[arguments.length - 1];
                    fetch('/logout', {method: 'POST', credentials: 'same-origin', redirect: 'manual',
                                      headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: ''})
                      .then(r => done(r.status)).catch(e => done(String(e)));
                    """) as? Int
                #expect(status == 403)
                // The same through the page: the real sign-out form with its token removed.
                try await browser.execute("document.querySelector(\".who form[action='/logout'] input[name=csrf]\").remove()")
                try await browser.click(try await browser.waitFor(".who form[action='/logout'] button"))
                try await browser.waitUntil("the refusal page") { try await browser.title().contains("Not allowed") }
                try await browser.open(stack.consoleURL + "/")
                let who = try await browser.text(try await browser.waitFor(".who"))
                #expect(who.contains("olivia"), "the refused sign-out signed out")
            }
        }
    }
}
