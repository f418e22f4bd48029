import Foundation
import LibPQ
import OutboxConsole
import OutboxEngine
import Testing
import TestSupport

/// The Events pages over real HTTP and a real PostgreSQL, the console logged in as the operator
/// database role: search, an event's page with its card data masked, and retry/skip with a reason
/// (operators only) through the CLI's rules.
@Suite struct EventsPagesTests {
    @Test func aViewerSearchesAndReadsAnEventButCannotRetryIt() async throws {
        try await RunningConsole.with(databaseURL: PageTestData.consoleURL) { console in
            let (dead, other) = try await console.withDatabase { session in
                let dead = try await PageTestData.insertEvent(session, merchant: "shoes-r-us", order: "A-1001")
                let other = try await PageTestData.insertEvent(session, merchant: "hats-inc", order: "B-7")
                try await session.execute(
                    """
                    UPDATE flexcharge.outbox SET state = 'dead', attempts = 5, last_error_class = 'retryable',
                           last_error = 'attempts exhausted', completed_at = now() WHERE id = $1
                    """, [dead])
                try await session.execute(
                    """
                    INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at, finished_at, http_status,
                                                     failure_class, error)
                    VALUES ($1, 5, 'send', 'host:1:w', 'sandbox', now(), now(), 503, 'retryable', 'FlexCharge answered 503')
                    """, [dead])
                try await session.execute(
                    """
                    INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id, fc_timestamp,
                                                           deliveries, decision)
                    VALUES ('webhook', 'shoes-r-us', 'sandbox', $1, 'order.completed', 'fc-order-77', '2026-12-01T10:00:00Z', 2, 'APPROVED')
                    """, [dead])
                return (dead, other)
            }
            try await console.addAccount("vera", role: .viewer)
            let viewer = console.browser()
            try await viewer.signIn("vera")

            let found = try await viewer.get("/events?merchant=shoes-r-us&state=dead")
            #expect(found.status == 200)
            #expect(found.body.contains("href=\"/events/\(dead)\""))
            #expect(!found.body.contains("href=\"/events/\(other)\""))
            #expect(found.body.contains("<label for=\"search-merchant\">"))
            let none = try await viewer.get("/events?merchant=shoes-r-us&state=succeeded")
            #expect(none.body.contains("No events match."))
            let byOrder = try await viewer.get("/events?order=B-7")
            #expect(byOrder.body.contains("href=\"/events/\(other)\"") && !byOrder.body.contains("href=\"/events/\(dead)\""))
            let refused = try await viewer.get("/events?state=lost")
            #expect(refused.body.contains("role=\"alert\"") && refused.body.contains("State must be one of"))

            let page = try await viewer.get("/events/\(dead)")
            #expect(page.status == 200)
            #expect(page.body.contains("<dd data-field=\"state\"><span class=\"badge bad\">dead</span></dd>"))
            #expect(page.body.contains("FlexCharge answered 503") && page.body.contains("HTTP 503"))
            #expect(page.body.contains("<td>order.completed</td><td>APPROVED</td><td>fc-order-77</td>"))
            #expect(!page.body.contains("data-action=\"retry\""))
            #expect(try await viewer.get("/events/999999").status == 404)

            let retry = try await viewer.post("/events/\(dead)/retry", form: [("csrf", try await viewer.csrfToken()), ("reason", "try again")])
            #expect(retry.status == 403)
            let state = try await console.withDatabase {
                try await $0.query("SELECT state FROM flexcharge.outbox WHERE id = $1", [dead]).first!.decode("state", as: String.self)
            }
            #expect(state == "dead")
        }
    }

    /// A row written before the insert guard (or by the owner with triggers off) holding card
    /// numbers in several disguises, a token and a CVV: the page shows none of them, by the PAN
    /// guard's own detector and by the literal values.
    @Test func theEventPageMasksCardData() async throws {
        let cards = ["4111 1111 1111 1111", "5555-5555-5555-4444", "\u{FF14}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}",
                     "378282246310005", "6011111111111117"]
        let payload = """
            {"transaction": {"amount": 1500, "currency": "USD"},
             "paymentMethod": {"cardNumber": "\(cards[0])", "token": false, "verificationValue": "737", "cardLast4Digits": "1111", "cardBrand": "VISA"},
             "payer": {"notes": "please charge card \(cards[1]) exp 12/25"},
             "cards": [{"pan": "tok_abc"}, {"other": "\(cards[2])"}],
             "extra": {"\(cards[3])": "x", "value": \(cards[4])},
             "orderItems": [{"name": "gift card", "description": "A-1001 blue shoes"}]}
            """
        try await RunningConsole.with(databaseURL: PageTestData.consoleURL) { console in
            let id = try await console.withDatabase { session in
                // The insert guard refuses this payload: write it as a legacy row, triggers off.
                try await session.execute("SET session_replication_role = replica")
                let id: Int64 = try await session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, idempotency_key, lane, claim_lane)
                    VALUES ('evaluate', 'shoes-r-us', 'A-1001', 'cit', 'website', 'https://shoes.example', $1::jsonb, 'k-legacy', 0, 0)
                    RETURNING id
                    """, [payload]).first!.decode("id")
                try await session.execute("SET session_replication_role = DEFAULT")
                return id
            }
            try await console.addAccount("vera", role: .viewer)
            let viewer = console.browser()
            try await viewer.signIn("vera")
            let page = try await viewer.get("/events/\(id)")
            #expect(page.status == 200, "\(console.logs.all.suffix(3))")
            #expect(page.body.contains("id=\"payload\""))
            for card in cards + ["4111111111111111", "5555555555554444", "737", "tok_abc"] {
                #expect(!page.body.contains(card), "the page shows \(card)")
            }
            for shown in ["[card number masked]", "[masked]", "[masked key 1]", "A-1001 blue shoes", "&quot;cardLast4Digits&quot;: &quot;1111&quot;"] {
                #expect(page.body.contains(shown), "the page lacks \(shown)")
            }
            let holdsCard = try await console.withDatabase {
                try await $0.query("SELECT flexcharge.text_has_pan($1) AS found", [page.body]).first!.decode("found", as: Bool.self)
            }
            #expect(!holdsCard)
            // The operator role still cannot read the raw payload: only the masked form.
            let rawRefused = try await console.withDatabase { session in
                try await session.execute("SET ROLE flexcharge_operator")
                do {
                    _ = try await session.query("SELECT payload FROM flexcharge.outbox WHERE id = $1", [id])
                    return false
                } catch let error as PGError {
                    return error.sqlState == "42501"
                }
            }
            #expect(rawRefused)
        }
    }

    @Test func anOperatorRetriesADeadEventWithAReasonAndItIsClaimableAgain() async throws {
        try await RunningConsole.with(databaseURL: PageTestData.consoleURL) { console in
            let (dead, pending, done) = try await console.withDatabase { session in
                try await MerchantStore(session: session, actor: "cli-admin").add("shoes-r-us", name: nil, switches: [.citWebsite: .sandbox])
                let dead = try await PageTestData.insertEvent(session, merchant: "shoes-r-us", order: "A-1")
                let pending = try await PageTestData.insertEvent(session, merchant: "shoes-r-us", order: "A-2")
                let done = try await PageTestData.insertEvent(session, merchant: "shoes-r-us", order: "A-3")
                try await session.execute(
                    """
                    UPDATE flexcharge.outbox SET state = 'dead', attempts = 5, last_error = 'attempts exhausted', completed_at = now(),
                           next_attempt_at = now() + interval '1 day' WHERE id = $1
                    """, [dead])
                try await session.execute("UPDATE flexcharge.outbox SET state = 'succeeded', decision = 'APPROVED' WHERE id = $1", [done])
                return (dead, pending, done)
            }
            try await console.addAccount("otto", role: .operator)
            let operatorBrowser = console.browser()
            try await operatorBrowser.signIn("otto")
            let page = try await operatorBrowser.get("/events/\(dead)")
            #expect(page.body.contains("data-action=\"retry\"") && page.body.contains("<label for=\"retry-reason\">"))
            let token = try #require(page.csrf)

            // A reason is required.
            let blank = try await operatorBrowser.post("/events/\(dead)/retry", form: [("csrf", token), ("reason", "  ")])
            #expect(blank.status == 400)
            let retried = try await operatorBrowser.post(
                "/events/\(dead)/retry", form: [("csrf", token), ("reason", "FlexCharge outage over, INC-42")])
            #expect(retried.status == 303)
            #expect(retried.header("Location") == "/events/\(dead)")

            let (state, note, actor) = try await console.withDatabase { session in
                let event = try await session.query("SELECT state FROM flexcharge.outbox WHERE id = $1", [dead]).first!
                let ledger = try await session.query(
                    "SELECT worker, error FROM flexcharge.attempts WHERE event_id = $1 AND action = 'operator_retry'", [dead]).first!
                return (try event.decode("state", as: String.self), try ledger.decode("error", as: String.self),
                        try ledger.decode("worker", as: String.self))
            }
            #expect(state == "pending")
            #expect(note.contains("FlexCharge outage over, INC-42"))
            #expect(actor == "console:otto")
            let after = try await operatorBrowser.get("/events/\(dead)")
            #expect(after.body.contains("Event \(dead) requeued (send first)."))
            #expect(after.body.contains("operator_retry") && after.body.contains("FlexCharge outage over, INC-42"))

            // Claimable again: the worker's claim() takes it (with the pending one).
            let claimed = try await console.withDatabase { session in
                try await session.query("SELECT id FROM flexcharge.claim('test-worker', 10, ARRAY[10, 10, 10, 10], interval '1 minute')")
                    .rows.map { try $0.decode("id", as: Int64.self) }
            }
            #expect(Set(claimed) == [dead, pending])

            // Skip, with its reason kept on the event and in its history.
            let later = try await console.withDatabase { try await PageTestData.insertEvent($0, merchant: "shoes-r-us", order: "A-4") }
            let skipped = try await operatorBrowser.post("/events/\(later)/skip", form: [("csrf", token), ("reason", "duplicate of A-1")])
            #expect(skipped.status == 303)
            let lastError = try await console.withDatabase {
                try await $0.query("SELECT state || ': ' || last_error AS e FROM flexcharge.outbox WHERE id = $1", [later]).first!.decode("e", as: String.self)
            }
            #expect(lastError == "skipped: skipped by console:otto: duplicate of A-1")

            // The CLI's rules: a succeeded event is neither retried nor skipped (409), nothing changes.
            let refusedRetry = try await operatorBrowser.post("/events/\(done)/retry", form: [("csrf", token), ("reason", "why not")])
            #expect(refusedRetry.status == 409)
            #expect(refusedRetry.body.contains("only failed or dead events can be retried"))
            let refusedSkip = try await operatorBrowser.post("/events/\(done)/skip", form: [("csrf", token), ("reason", "why not")])
            #expect(refusedSkip.status == 409)
            let doneState = try await console.withDatabase {
                try await $0.query("SELECT state FROM flexcharge.outbox WHERE id = $1", [done]).first!.decode("state", as: String.self)
            }
            #expect(doneState == "succeeded")
        }
    }
}
