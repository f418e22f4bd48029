import Foundation
import LibPQ
import Testing
import TestSupport

/// Switching a merchant's channel in the browser: reviewed, confirmed, stored and audited under the
/// signed-in admin; refused to a viewer and an operator, and to a form without its CSRF token.
@Suite(.serialized, .enabled(if: ChromeDriver.shouldRun, ChromeDriver.skipReason))
struct MerchantSwitchBrowserTests {
    @Test func anAdminSwitchesMITToSandboxAndSeesTheAuditRow() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("ada", role: "admin")
            try await stack.enrol("shoes", name: "Shoes R Us", citWebsite: "sandbox", mit: "off")
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "ada")
                // From the menu to the merchant's page, as a person would.
                try await browser.click(try await browser.waitFor("nav[aria-label=Main] a[href='/merchants']"))
                try await browser.click(try await browser.waitFor("a[href='/merchants/shoes']"))
                _ = try await browser.waitFor("table#switches")

                try await browser.click(try await browser.waitFor("select#switch-mit option[value=sandbox]"))
                let review = try await browser.waitFor("form[data-action=switch-review]:has(select#switch-mit) button[type=submit]")
                try await browser.click(review)

                // The review page says what will change; nothing is stored before the confirmation.
                let impact = try await browser.text(try await browser.waitFor("#impact-total"))
                #expect(impact.contains("pending event"), "review page: \(impact)")
                #expect(try await stack.merchantSwitch("shoes", "mit") == "off")
                try await browser.click(try await browser.waitFor("form[data-action=switch] button[type=submit]"))

                // Back on the merchant: the notice, and the audit row under the signed-in admin.
                let notice = try await browser.text(try await browser.waitFor(".notice"))
                #expect(notice.contains("sandbox"), "notice: \(notice)")
                let firstRow = try await browser.text(try await browser.waitFor("table#audit tbody tr"))
                #expect(firstRow.contains("console:ada") && firstRow.contains("sandbox"), "newest audit row: \(firstRow)")
            }
            #expect(try await stack.merchantSwitch("shoes", "mit") == "sandbox")
            let audit = try await stack.session.query(
                "SELECT count(*) AS n FROM flexcharge.merchant_audit WHERE merchant_id = 'shoes' AND actor = 'console:ada'").first!
            #expect(try audit.decode("n", as: Int.self) == 1)
        }
    }

    /// A viewer sees no change form; its requests for the review page and the change itself (with a
    /// valid CSRF token of its own session) are refused with 403; an operator's POST too (admins only).
    @Test func aViewerAndAnOperatorAreRefusedTheSwitch() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("vera", role: "viewer")
            try await stack.addUser("otto", role: "operator")
            try await stack.enrol("shoes", name: "Shoes R Us", citWebsite: "sandbox", mit: "off")
            for user in ["vera", "otto"] {
                try await ChromeDriver.withBrowser { browser in
                    try await browser.signIn(stack, as: user)
                    try await browser.open(stack.consoleURL + "/merchants/shoes")
                    _ = try await browser.waitFor("table#switches")
                    #expect(try await browser.find("form[data-action=switch-review]") == nil, "\(user) is offered the switch")

                    try await browser.open(stack.consoleURL + "/merchants/shoes/switch?channel=mit&value=sandbox")
                    try await browser.waitUntil("the refusal page for \(user)") { try await browser.title().contains("Not allowed") }

                    let status = try await browser.postForm("/merchants/shoes/switch", ["channel": "mit", "value": "sandbox", "expected": "off"])
                    #expect(status == 403, "\(user)'s POST with a valid CSRF token answered \(status)")
                }
            }
            #expect(try await stack.merchantSwitch("shoes", "mit") == "off")
        }
    }

    @Test func theConfirmationWithoutItsCSRFTokenIsRefused() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("ada", role: "admin")
            try await stack.enrol("shoes", name: "Shoes R Us", citWebsite: "sandbox", mit: "off")
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "ada")
                try await browser.open(stack.consoleURL + "/merchants/shoes/switch?channel=mit&value=sandbox")
                let confirm = try await browser.waitFor("form[data-action=switch] button[type=submit]")
                try await browser.execute("document.querySelector('form[data-action=switch] input[name=csrf]').remove()")
                try await browser.click(confirm)
                try await browser.waitUntil("the refusal page") { try await browser.title().contains("Not allowed") }
            }
            #expect(try await stack.merchantSwitch("shoes", "mit") == "off")
            let audit = try await stack.session.query("SELECT count(*) AS n FROM flexcharge.merchant_audit WHERE actor = 'console:ada'").first!
            #expect(try audit.decode("n", as: Int.self) == 0)
        }
    }
}

extension ConsoleStack {
    /// A merchant's own switch of `channel` (cit_website, cit_call_center, mit), read from the database.
    func merchantSwitch(_ merchant: String, _ channel: String) async throws -> String? {
        guard ["cit_website", "cit_call_center", "mit"].contains(channel) else { throw TestSupportError("no channel \(channel)") }
        return try await session.query("SELECT \(channel)::text AS value FROM flexcharge.merchants WHERE merchant_id = $1", [merchant])
            .first?.decode("value", as: String?.self)
    }
}

extension Browser {
    /// POSTs a form from the page (same origin, with the session's cookie) carrying this session's own
    /// CSRF token, read from the layout's sign-out form; returns the answer's status.
    func postForm(_ path: String, _ fields: [String: String]) async throws -> Int {
        let value = try await executeAsync(
            """
            const [path, fields, done] = arguments;
            const body = new URLSearchParams(fields);
            body.set('csrf', document.querySelector("form[action='/logout'] input[name=csrf]").value);
            fetch(path, {method: 'POST', credentials: 'same-origin', redirect: 'manual', body})
              .then(r => done(r.status)).catch(e => done(String(e)));
            """, [path, fields])
        guard let status = value as? Int else { throw TestSupportError("POST \(path) from the page: \(String(describing: value))") }
        return status
    }
}
