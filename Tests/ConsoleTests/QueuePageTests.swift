import Foundation
import LibPQ
import OutboxEngine
import Testing
import TestSupport

@testable import OutboxConsole

/// The queue page over real HTTP on a seeded database: its numbers are `status`'s, its charts have
/// a mark per lane, state and minute, it refreshes through `/queue/live`, and pausing is an
/// operator's audited action through PauseBoard.
@Suite struct QueuePageTests {
    /// The seeded history plus a live queue: pending events (one retried, one due a lookup), a
    /// running one under an expired lease, an open breaker, a pause and a rate limit.
    static func seedQueue(_ session: PGSession) async throws {
        try await SeededDataset.seed(session)
        for (order, kind, channel) in [("q1", "evaluate", "cit"), ("q2", "evaluate", "mit"), ("q3", "transmit", "cit"), ("q4", "refund", "cit")] {
            try await session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ($1, 'm1', $2, $3, CASE WHEN $3 = 'cit' THEN 'website' END, 'q.example',
                        CASE WHEN $1 = 'refund' THEN '{"amountCents": 100}' ELSE '{"transaction": {"amount": 100}}' END::jsonb)
                """, [kind, order, channel])
        }
        for statement in [
            "UPDATE flexcharge.outbox SET attempts = 2, created_at = now() - interval '10 minutes' WHERE order_id = 'q1'",
            "UPDATE flexcharge.outbox SET next_action = 'lookup', attempts = 1 WHERE order_id = 'q2'",
            """
            UPDATE flexcharge.outbox SET state = 'running', lease_owner = 'host:1:w', lease_expires_at = now() - interval '1 minute'
             WHERE order_id = 'q3'
            """,
            """
            INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, trips, opened_at, retry_at, last_error)
            VALUES ('m2', 'sandbox', 'open', 5, 2, now() - interval '3 minutes', now() + interval '30 seconds', 'send: HTTP 503')
            """,
            "UPDATE flexcharge.merchants SET rate_limit_per_second = 20 WHERE merchant_id = 'm1'",
        ] {
            try await session.execute(statement)
        }
        try await PauseBoard(session: session, actor: "cli:bob").pause(try PauseScope(merchantID: "m2"), reason: "new keys <b>")
    }

    /// The text of every element carrying `attribute="value"` (the first `>` after it up to `<`).
    static func values(_ html: String, _ marker: String) -> [String] {
        html.components(separatedBy: marker).dropFirst().map { part in
            let afterTag = part[part.index(after: part.firstIndex(of: ">")!)...]
            return String(afterTag.prefix { $0 != "<" })
        }
    }

    @Test func theQueuePageShowsWhatStatusPrints() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await Self.seedQueue($0) }
            try await console.addAccount("vera", role: .viewer)
            let run = try await runCLI(["status", "--json"], environment: ["DATABASE_URL": console.db.url])
            #expect(run.status == 3, "\(run.stderr)")
            let status = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]

            let browser = console.browser()
            try await browser.signIn("vera")
            let page = try await browser.get("/queue")
            #expect(page.status == 200)
            let html = page.body

            // Totals per state.
            let totals = status["totals"] as! [String: Int]
            for state in QueueStatus.states {
                #expect(Self.values(html, "data-total=\"\(state)\"") == ["\(totals[state] ?? 0)"], "\(state)")
            }
            #expect(totals["pending"] == 3 && totals["running"] == 1 && totals["dead"] == 1)
            // Lanes and states: events, retrying and awaiting lookup, row for row.
            let lanes = status["lanes"] as! [[String: Any]]
            #expect(lanes.count == 7)
            for lane in lanes {
                let row = html.components(separatedBy: "data-lane=\"\(lane["lane"]!)\" data-state=\"\(lane["state"]!)\"")
                #expect(row.count == 2, "\(lane)")
                let cells = row[1].components(separatedBy: "</tr>")[0]
                #expect(Self.values(cells, "data-field=\"events\"") == ["\(lane["events"]!)"])
                #expect(Self.values(cells, "data-field=\"retrying\"") == ["\(lane["retrying"]!)"])
                #expect(Self.values(cells, "data-field=\"lookup\"") == ["\(lane["awaitingLookup"]!)"])
            }
            // Workers and their leases.
            let leases = status["leases"] as! [[String: Any]]
            #expect(leases.count == 1)
            let worker = html.components(separatedBy: "data-worker=\"host:1:w\"")
            #expect(worker.count == 2)
            #expect(Self.values(worker[1], "data-field=\"leases\"").first == "\(leases[0]["leases"]!)")
            #expect(worker[1].contains("<span class=\"badge bad\">1</span>"))
            // Breakers per state, the open one listed.
            let counts = status["breakerCounts"] as! [String: Int]
            for state in QueueStatus.breakerStates {
                #expect(Self.values(html, "data-breakers=\"\(state)\"") == ["\(state) \(counts[state] ?? 0)"])
            }
            #expect(html.contains("send: HTTP 503"))
            // The same alerts, word for word.
            let alerts = status["alerts"] as! [String]
            #expect(alerts.count == 4)
            for alert in alerts {
                // The oldest pending event's age is read again by the page a moment after `status`: it may
                // have grown by a second or two (a full parallel run saw it); every other alert is word for word.
                let variants = Self.agedVariants(of: alert)
                #expect(variants.contains { html.contains("<li class=\"error\">\(HTML.escape($0))</li>") }, "\(alert)")
            }
            // The pause with who, why (escaped) and the events it holds.
            let pauses = status["pauses"] as! [[String: Any]]
            #expect(pauses.count == 1)
            #expect(html.contains("cli:bob") && html.contains("new keys &lt;b&gt;"))
            #expect(Self.values(html, "data-field=\"held\"") == ["\(pauses[0]["pendingEvents"]!)"])
            // The rate limit: 20/s, burst 5, no bucket yet.
            #expect(html.contains("<th scope=\"row\">m1</th><td class=\"num\">20/s</td><td class=\"num\">5</td><td>no call yet</td>"))
        }
    }

    @Test func theChartsHaveAMarkPerLaneStateAndMinute() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await Self.seedQueue($0) }
            try await console.addAccount("vera", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("vera")
            let html = try await browser.get("/queue").body
            let figure = { (id: String) in ChartsTests.figure(id, in: html) }
            let count = { (needle: String, text: String) in ChartsTests.occurrences(needle, in: text) }
            // Four lanes (flexcharge.lanes) x four states, stacked.
            #expect(count("<rect class=\"chart-bar\"", figure("chart-backlog")) == 16)
            #expect(figure("chart-backlog").contains("<title>cit_evaluate, pending: 1</title>"))
            #expect(figure("chart-backlog").contains("<title>transmit, running: 1</title>"))
            #expect(count("<rect class=\"chart-bar\"", figure("chart-oldest")) == 4)
            #expect(count("<rect class=\"chart-bar\"", figure("chart-retry")) == 8)
            #expect(figure("chart-retry").contains("<title>cit_evaluate, retrying: 1</title>"))
            #expect(figure("chart-retry").contains("<title>mit_evaluate, awaiting lookup: 1</title>"))
            // The last hour per minute and the current minute: 61 points per series.
            let throughput = figure("chart-throughput")
            #expect(count("<circle class=\"chart-point\"", throughput) == 2 * (QueueSnapshot.throughputMinutes + 1))
            // The seeded ledger: 16 calls just now, 9 answered (each event's last) and 7 failed.
            let cells = Self.values(throughput, "<td class=\"num\"").map { Int($0.replacingOccurrences(of: ",", with: "")) ?? -1 }
            #expect(cells.count == 2 * (QueueSnapshot.throughputMinutes + 1))
            let answered: Int = stride(from: 0, to: cells.count, by: 2).map { cells[$0] }.reduce(0, +)
            let failed: Int = stride(from: 1, to: cells.count, by: 2).map { cells[$0] }.reduce(0, +)
            #expect(answered == 9)
            #expect(failed == 7)
            // The page loads its script and stylesheets from /static/ only; no inline script or style.
            #expect(html.contains("<script defer src=\"/static/queue-live.js\"></script>"))
            #expect(!html.contains("<script>") && !html.contains("style=\""))
            let script = try await browser.get("/static/queue-live.js")
            #expect(script.status == 200 && script.header("Content-Type")?.hasPrefix("text/javascript") == true)
            #expect(script.body.contains("X-Console-Fragment"))
            #expect(try await browser.get("/static/charts.css").status == 200)
        }
    }

    @Test func theLivePartIsAFragmentWithTheSameNumbers() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await Self.seedQueue($0) }
            try await console.addAccount("vera", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("vera")
            let live = try await browser.get("/queue/live")
            #expect(live.status == 200)
            #expect(live.header("X-Console-Fragment") == "queue")
            #expect(!live.body.contains("<html") && !live.body.contains("<h1>"))
            #expect(Self.values(live.body, "data-total=\"pending\"") == ["3"])
            // A new pending event shows on the next fetch.
            _ = try await console.withDatabase {
                try await $0.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    VALUES ('evaluate', 'm1', 'q9', 'cit', 'website', 'q.example', '{"transaction": {"amount": 100}}')
                    """)
            }
            #expect(Self.values(try await browser.get("/queue/live").body, "data-total=\"pending\"") == ["4"])
            // Signed out, the fragment is not served (the script reloads into the sign-in page).
            let stranger = console.browser()
            let refused = try await stranger.get("/queue/live")
            #expect(refused.status != 200)
            #expect(refused.header("X-Console-Fragment") == nil)
            // Without script: a reload link, and ?reload=N asks the layout for a meta refresh.
            let page = try await browser.get("/queue")
            #expect(page.body.contains("href=\"/queue?reload=10\""))
            let reloading = try await browser.get("/queue?reload=10")
            #expect(reloading.body.contains("<meta http-equiv=\"refresh\" content=\"10\">"))
            #expect(!page.body.contains("http-equiv=\"refresh\""))
        }
    }

    /// Active pauses, as (merchant, paused_by, resumed_by).
    static func pauses(_ console: RunningConsole) async throws -> [(String?, String, String?, String?)] {
        try await console.withDatabase {
            try await $0.query("SELECT merchant_id, paused_by, resumed_by, reason FROM flexcharge.pauses ORDER BY id").rows.map {
                (try $0.decode("merchant_id"), try $0.decode("paused_by"), try $0.decode("resumed_by"), try $0.decode("reason"))
            }
        }
    }

    @Test func aViewerCannotPauseAnOperatorPausesAndResumesUnderTheirName() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await SeededDataset.seed($0) }
            try await console.addAccount("vera", role: .viewer)
            try await console.addAccount("otto", role: .operator)
            let viewer = console.browser()
            try await viewer.signIn("vera")
            let viewerPage = try await viewer.get("/queue")
            #expect(!viewerPage.body.contains("data-action=\"pause\""))
            let refused = try await viewer.post(
                "/queue/pause", form: [("csrf", try await viewer.csrfToken()), ("merchant", "m1"), ("reason", "try")])
            #expect(refused.status == 403)
            #expect(try await Self.pauses(console).isEmpty)

            let operatorBrowser = console.browser()
            try await operatorBrowser.signIn("otto")
            let page = try await operatorBrowser.get("/queue")
            #expect(page.body.contains("<form method=\"post\" action=\"/queue/pause\" data-action=\"pause\""))
            #expect(page.body.contains("<label for=\"pause-reason\">"))
            // Without the CSRF token: refused.
            let forged = try await operatorBrowser.post("/queue/pause", form: [("merchant", "m1"), ("reason", "x")])
            #expect(forged.status == 403)
            // No reason, or nothing named without confirming the whole queue: 400, nothing paused.
            let csrf = try await operatorBrowser.csrfToken()
            #expect(try await operatorBrowser.post("/queue/pause", form: [("csrf", csrf), ("merchant", "m1"), ("reason", " ")]).status == 400)
            let whole = try await operatorBrowser.post("/queue/pause", form: [("csrf", csrf), ("reason", "failover")])
            #expect(whole.status == 400)
            #expect(whole.body.contains("confirm that the whole queue"))
            #expect(try await operatorBrowser.post("/queue/pause", form: [("csrf", csrf), ("channel", "sms"), ("reason", "x")]).status == 400)
            #expect(try await Self.pauses(console).isEmpty)

            // Pause m1's MIT: recorded under the signed-in operator, shown on the page.
            let paused = try await operatorBrowser.post(
                "/queue/pause", form: [("csrf", csrf), ("merchant", "m1"), ("channel", "mit"), ("environment", ""), ("reason", "new keys")])
            #expect(paused.status == 303)
            #expect(paused.header("Location") == "/queue")
            let rows = try await Self.pauses(console)
            #expect(rows.count == 1)
            #expect(rows.first?.0 == "m1" && rows.first?.1 == "console:otto" && rows.first?.3 == "new keys")
            let after = try await operatorBrowser.get("/queue")
            #expect(after.body.contains("Paused merchant m1, channel mit."))
            #expect(after.body.contains("data-action=\"resume\""))
            // Twice: the engine's refusal, as a 400 page.
            let again = try await operatorBrowser.post(
                "/queue/pause", form: [("csrf", csrf), ("merchant", "m1"), ("channel", "mit"), ("reason", "again")])
            #expect(again.status == 400)
            #expect(again.body.contains("is already paused (by console:otto"))
            // The viewer cannot resume it either.
            let viewerResume = try await viewer.post(
                "/queue/resume", form: [("csrf", try await viewer.csrfToken()), ("merchant", "m1"), ("channel", "mit")])
            #expect(viewerResume.status == 403)
            // Resume through the form's own fields.
            let resumed = try await operatorBrowser.post(
                "/queue/resume", form: [("csrf", csrf), ("merchant", "m1"), ("channel", "mit"), ("environment", ""), ("reason", "done")])
            #expect(resumed.status == 303)
            let final = try await Self.pauses(console)
            #expect(final.count == 1 && final.first?.2 == "console:otto")
            #expect(try await operatorBrowser.get("/queue").body.contains("data-pauses=\"none\""))

            // The whole queue, confirmed.
            let all = try await operatorBrowser.post("/queue/pause", form: [("csrf", csrf), ("all", "yes"), ("reason", "failover")])
            #expect(all.status == 303)
            #expect(try await Self.pauses(console).last.map { $0.0 == nil && $0.1 == "console:otto" } == true)
        }
    }

    /// The throughput's binary search over the ledger's ids finds the hour's first attempt whatever
    /// the ids' gaps, and counts each minute exactly.
    @Test func throughputCountsTheLastHourPerMinuteFromTheLedger() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            // 3000 old calls (two hours ago), a gap of ids, then calls 1, 5 and 30 minutes ago.
            try await session.execute(
                """
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, started_at, finished_at, failure_class)
                SELECT n, 1, 'send', 'w', now() - interval '2 hours', now() - interval '2 hours' + n * interval '1 ms', NULL
                  FROM generate_series(1, 3000) n
                """)
            try await session.execute("SELECT setval(pg_get_serial_sequence('flexcharge.attempts', 'id'), 10000)")
            try await session.execute(
                """
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, started_at, finished_at, failure_class)
                SELECT n, 1, CASE WHEN n % 5 = 0 THEN 'lookup' ELSE 'send' END, 'w', now(), $1::timestamptz - make_interval(mins => m),
                       CASE WHEN n % 3 = 0 THEN 'retryable' END
                  FROM generate_series(1, 30) n, unnest(ARRAY[1, 5, 30]) m
                """, [Date()])
            try await session.execute(
                """
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, started_at, finished_at, error)
                VALUES (1, 1, 'operator_retry', 'console:x', now(), now(), 'not a call')
                """)
            let now = Date()
            let minutes = try await QueueSnapshot.throughput(session, now: now)
            #expect(minutes.count == QueueSnapshot.throughputMinutes + 1)
            #expect(minutes.map(\.start) == minutes.map(\.start).sorted())
            #expect(minutes.last!.start <= now && now.timeIntervalSince(minutes.last!.start) < 60)
            let busy = minutes.filter { $0.answered + $0.failed > 0 }
            #expect(busy.count == 3)
            #expect(busy.allSatisfy { $0.answered == 20 && $0.failed == 10 })
            #expect(minutes.map(\.answered).reduce(0, +) == 60)
            // An empty ledger: zeros.
            try await session.execute("DELETE FROM flexcharge.attempts")
            #expect(try await QueueSnapshot.throughput(session, now: now).allSatisfy { $0.answered == 0 && $0.failed == 0 })
            await session.close()
        }
    }

    /// `alert` itself and, for "oldest pending event is N s old …", the same with N + 1 and N + 2.
    static func agedVariants(of alert: String) -> [String] {
        let prefix = "oldest pending event is "
        guard alert.hasPrefix(prefix), let seconds = Int(alert.dropFirst(prefix.count).prefix { $0.isNumber }) else { return [alert] }
        let rest = alert.dropFirst(prefix.count).drop { $0.isNumber }
        return (0...2).map { "\(prefix)\(seconds + $0)\(rest)" }
    }
}
