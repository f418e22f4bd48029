import Foundation
import LibPQ
import OutboxConsole
import OutboxEngine
import Testing
import TestSupport

/// The Merchants pages over real HTTP and a real PostgreSQL, the console logged in as the
/// operator database role (as deployed): viewers read, only admins change a switch, after a review
/// that says what the change affects, and the change lands in the audit trail under the user.
@Suite struct MerchantsPagesTests {
    @Test func aViewerReadsMerchantsButCannotChangeASwitch() async throws {
        try await RunningConsole.with(databaseURL: PageTestData.consoleURL) { console in
            try await PageTestData.enrolShoes(console)
            try await console.addAccount("vera", role: .viewer)
            let viewer = console.browser()
            try await viewer.signIn("vera")

            let list = try await viewer.get("/merchants")
            #expect(list.status == 200)
            #expect(list.body.contains("href=\"/merchants/shoes-r-us\""))
            #expect(list.body.contains("sandbox set") && list.body.contains("production none"))

            let page = try await viewer.get("/merchants/shoes-r-us")
            #expect(page.status == 200)
            #expect(page.body.contains("https://promo.shoes.example"))          // the site override
            #expect(page.body.contains("inherit (off)"))                        // what the site inherits
            #expect(page.body.contains("5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76"))   // the MID (not secret)
            #expect(page.body.contains("id=\"audit\"") && page.body.contains(">cli-admin<"))
            #expect(!page.body.contains("data-action=\"switch-review\""))        // no change form for a viewer
            #expect(try await viewer.get("/merchants/nobody").status == 404)

            // Neither the review nor the change itself.
            #expect(try await viewer.get("/merchants/shoes-r-us/switch?channel=mit&value=production").status == 403)
            let refused = try await viewer.post(
                "/merchants/shoes-r-us/switch",
                form: [("csrf", try await viewer.csrfToken()), ("channel", "mit"), ("value", "production"), ("expected", "off")])
            #expect(refused.status == 403)
            let (mit, consoleAudits) = try await console.withDatabase { session in
                (try await session.query("SELECT mit FROM flexcharge.merchants WHERE merchant_id = 'shoes-r-us'").first!.decode("mit", as: String.self),
                 try await session.query("SELECT count(*) AS n FROM flexcharge.merchant_audit WHERE actor LIKE 'console:%'").first!
                    .decode("n", as: Int.self))
            }
            #expect(mit == "off")
            #expect(consoleAudits == 0)
        }
    }

    @Test func anAdminReviewsTheImpactThenTheChangeIsAuditedUnderTheUser() async throws {
        try await RunningConsole.with(databaseURL: PageTestData.consoleURL) { console in
            try await PageTestData.enrolShoes(console)
            // Two MIT evaluates and a transmit wait; a CIT event and a test MIT event are not affected.
            try await console.withDatabase { session in
                for (kind, channel, order) in [("evaluate", "mit", "r-1"), ("evaluate", "mit", "r-2"), ("transmit", "mit", "r-3"), ("evaluate", "cit", "c-1")] {
                    _ = try await PageTestData.insertEvent(session, merchant: "shoes-r-us", order: order, kind: kind, channel: channel)
                }
                try await session.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, site_url, payload, is_test)
                    VALUES ('evaluate', 'shoes-r-us', 't-1', 'mit', 'https://shoes.example', '{"transaction": {"amount": 100}}', true)
                    """)
            }
            try await console.addAccount("root", role: .admin)
            let admin = console.browser()
            try await admin.signIn("root")
            let page = try await admin.get("/merchants/shoes-r-us")
            #expect(page.body.contains("data-action=\"switch-review\""))

            let review = try await admin.get("/merchants/shoes-r-us/switch?channel=mit&value=production")
            #expect(review.status == 200)
            #expect(review.body.contains("3 pending event(s) will be routed to production"))
            #expect(review.body.contains("<th scope=\"row\">mit_evaluate</th><td class=\"num\">2</td>"))
            #expect(review.body.contains("<th scope=\"row\">transmit</th><td class=\"num\">1</td>"))
            #expect(review.body.contains("real money"))
            #expect(review.body.contains("no production credentials"))
            #expect(review.body.contains("data-action=\"switch\""))
            let expected = try #require(Browser.field("expected", in: review.body))
            #expect(expected == "off")

            let done = try await admin.post(
                "/merchants/shoes-r-us/switch",
                form: [("csrf", try #require(review.csrf)), ("channel", "mit"), ("value", "production"), ("site", ""), ("expected", expected)])
            #expect(done.status == 303)
            #expect(done.header("Location") == "/merchants/shoes-r-us#audit")
            let audit = try await console.withDatabase { session in
                try await session.query(
                    "SELECT actor, action, field, old_value, new_value FROM flexcharge.merchant_audit WHERE actor LIKE 'console:%'").rows
            }
            #expect(audit.count == 1)
            #expect(try audit.first?.decode("actor", as: String.self) == "console:root")
            #expect(try audit.first?.decode("field", as: String.self) == "mit")
            #expect(try audit.first?.decode("old_value", as: String.self) == "off")
            #expect(try audit.first?.decode("new_value", as: String.self) == "production")
            let after = try await admin.get("/merchants/shoes-r-us")
            #expect(after.body.contains("MIT of shoes-r-us set to production."))
            #expect(after.body.contains("<td>console:root</td><td>set</td><td>mit</td><td>off</td><td>production</td>"))

            // A form reviewed before that change is refused (409), not applied over it.
            let stale = try await admin.post(
                "/merchants/shoes-r-us/switch",
                form: [("csrf", try await admin.csrfToken()), ("channel", "mit"), ("value", "sandbox"), ("expected", "off")])
            #expect(stale.status == 409)

            // A site's override back to "inherit", through the same review and store.
            let siteReview = try await admin.get("/merchants/shoes-r-us/switch?site=https%3A%2F%2Fpromo.shoes.example&channel=cit_website&value=inherit")
            #expect(siteReview.status == 200)
            #expect(siteReview.body.contains("inherit (sandbox)"))
            let siteDone = try await admin.post(
                "/merchants/shoes-r-us/switch",
                form: [("csrf", try #require(siteReview.csrf)), ("channel", "cit_website"), ("value", "inherit"),
                       ("site", "https://promo.shoes.example"), ("expected", try #require(Browser.field("expected", in: siteReview.body)))])
            #expect(siteDone.status == 303)
            let (override, siteAudit) = try await console.withDatabase { session in
                (try await session.query(
                    "SELECT cit_website FROM flexcharge.merchant_sites WHERE merchant_id = 'shoes-r-us' AND site = 'https://promo.shoes.example'")
                    .first!.decode("cit_website", as: String?.self),
                 try await session.query(
                    "SELECT actor, new_value FROM flexcharge.merchant_audit WHERE action = 'site https://promo.shoes.example' AND actor = 'console:root'")
                    .first?.decode("new_value", as: String?.self))
            }
            #expect(override == nil)
            #expect(siteAudit == "inherit")
        }
    }
}

/// Data the Merchants and Events page tests share.
enum PageTestData {
    /// The test database's URL with the session role set to flexcharge_console: the console's grants.
    static func consoleURL(_ db: TestDatabase) async throws -> String {
        db.url + (db.url.contains("?") ? "&" : "?") + "options=-c%20role%3Dflexcharge_console"
    }

    /// shoes-r-us: CIT website sandbox, a site that turns it off, sandbox credentials, added by `cli-admin`.
    static func enrolShoes(_ console: RunningConsole) async throws {
        try await console.withDatabase { session in
            let store = MerchantStore(session: session, actor: "cli-admin")
            try await store.add("shoes-r-us", name: "Shoes R Us", switches: [.citWebsite: .sandbox])
            try await store.set("shoes-r-us", site: "https://promo.shoes.example", name: nil, switches: [.citWebsite: .off])
            try await session.execute(
                """
                INSERT INTO flexcharge.merchant_credentials (merchant_id, environment, mid, app_key_sealed, app_secret_sealed, key_id)
                VALUES ('shoes-r-us', 'sandbox', '5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76', '\\x01', '\\x02', 'k1')
                """)
        }
    }

    /// Inserts an event as the gateway would (the insert trigger runs); returns its id.
    static func insertEvent(
        _ session: PGSession, merchant: String, order: String, kind: String = "evaluate", channel: String = "cit",
        payload: String = #"{"transaction": {"amount": 1500, "currency": "USD"}}"#
    ) async throws -> Int64 {
        try await session.query(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
            VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'cit' THEN 'website' END, 'https://shoes.example', $5::jsonb) RETURNING id
            """, [kind, merchant, order, channel, payload]
        ).first!.decode("id")
    }
}
