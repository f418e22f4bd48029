import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// Retention (migrations/0018_retention.sql, Sources/OutboxEngine/Retention): what is deleted and
/// what never is, one pruner at a time, and a simulated month of traffic that ends with flat tables,
/// an unchanged claim cost and report/status queries served by indexes.
@Suite struct RetentionTests {
    private static let day: Duration = RetentionPolicy.day

    @Test func deletesOnlyFinishedOrdersPastTheirRetentionAndTheLedgerOnlyAfterItsEvent() async throws {
        try await TestDatabase.with { db in
            let owner = db.session()
            try await owner.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m', 'sandbox')")
            // (order, kind, state, decision, age of its last change in days)
            let events: [(String, String, String, String?, Int)] = [
                ("done", "transmit", "succeeded", nil, 40), ("done", "evaluate", "succeeded", "DECLINED", 40),
                ("live-sibling", "transmit", "succeeded", nil, 40), ("live-sibling", "evaluate", "pending", nil, 40),
                ("awaiting", "evaluate", "awaiting_outcome", "CHALLENGE", 40),
                ("running", "evaluate", "running", nil, 40),
                ("failed-young", "transmit", "failed", nil, 40), ("failed-old", "evaluate", "dead", nil, 100),
                ("rescued", "evaluate", "succeeded", "APPROVED", 100), ("rescued-old", "evaluate", "succeeded", "APPROVED", 500),
                ("touched", "transmit", "succeeded", nil, 40), ("touched", "evaluate", "succeeded", "DECLINED", 10),
                ("half-day", "transmit", "succeeded", nil, 0),
            ]
            var ids: [String: [Int64]] = [:]
            for (order, kind, state, decision, age) in events {
                let id = try await Self.insertEvent(order: order, kind: kind, on: owner)
                try await owner.execute(
                    """
                    UPDATE flexcharge.outbox
                       SET state = $2, decision = $3, lease_owner = CASE WHEN $2 = 'running' THEN 'w' END,
                           lease_expires_at = CASE WHEN $2 = 'running' THEN now() + interval '1 minute' END,
                           created_at = now() - make_interval(days => $4 + 1) - interval '12 hours',
                           updated_at = now() - make_interval(days => $4) - interval '12 hours'
                     WHERE id = $1
                    """, [id, state, decision, age])
                ids[order, default: []].append(id)
            }
            let done = ids["done"]!, rescued = ids["rescued"]!
            // Ledger rows: old ones of an event that will go, of one that stays, and a young one.
            for (event, age) in [(done[0], 500), (rescued[0], 500), (done[1], 10)] {
                try await owner.execute(
                    """
                    INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, started_at, finished_at)
                    VALUES ($1, 1, 'send', 'w', now() - make_interval(days => $2), now() - make_interval(days => $2))
                    """, [event, age])
            }
            // Outcomes: one of a pruned event, unmatched ones old and young.
            try await owner.execute(
                """
                INSERT INTO flexcharge.outcome_events (source, merchant_id, event_id, fc_event, fc_order_id, received_at, last_delivery_at)
                VALUES ('lookup', 'm', $1, 'lookup', 'fc-1', now() - interval '40 days', now() - interval '40 days'),
                       ('webhook', 'm', NULL, 'order.completed', 'fc-x', now() - interval '100 days', now() - interval '100 days'),
                       ('webhook', 'm', NULL, 'order.completed', 'fc-y', now() - interval '10 days', now() - interval '10 days')
                """, [done[1]])
            try await owner.execute(
                """
                INSERT INTO flexcharge.merchant_audit (at, actor, merchant_id, action, field)
                VALUES (now() - interval '500 days', 'ops', 'm', 'set', 'mit'), (now() - interval '200 days', 'ops', 'm', 'set', 'mit')
                """)
            try await owner.execute(
                """
                INSERT INTO flexcharge.webhook_nonces (merchant_id, nonce, seen_at)
                VALUES ('m', 'old', now() - interval '2 days'), ('m', 'new', now())
                """)

            // As the worker role, with retentions below the database's floors for audit and events.
            let worker = PGSession(configuration: PGConfiguration(url: Self.url(db.url, role: "flexcharge_worker")), name: "pruner")
            let policy = RetentionPolicy(
                completed: Self.day * 30, failed: Self.day * 90, rescued: Self.day * 400, attempts: Self.day * 400,
                audit: Self.day * 100, webhookNonces: .seconds(3600), batchSize: 2)
            let report = try #require(try await Pruner(policy: policy).pass(on: worker))

            let remaining = Set(try await owner.query("SELECT order_id FROM flexcharge.outbox").rows.map { try $0.decode("order_id", as: String.self) })
            #expect(remaining == ["live-sibling", "awaiting", "running", "failed-young", "rescued", "touched", "half-day"])
            #expect(report.orders == 3 && report.events == 4, "\(report)")  // done (2 events), failed-old, rescued-old
            // The ledger: the old row of the pruned event went; the old row of a kept event and the young row stayed.
            let ledger = try await owner.query("SELECT event_id FROM flexcharge.attempts ORDER BY event_id").rows.map { try $0.decode("event_id", as: Int64.self) }
            #expect(ledger == [done[1], rescued[0]].sorted())
            #expect(report.attempts == 1)
            let outcomes = try await owner.query("SELECT fc_order_id FROM flexcharge.outcome_events").rows.map { try $0.decode("fc_order_id", as: String.self) }
            #expect(outcomes == ["fc-y"])
            // Audit: 100 days asked, the database keeps 365: only the 500-day-old row went.
            #expect(try await owner.query("SELECT count(*)::int AS n FROM flexcharge.merchant_audit").first!.decode("n", as: Int.self) == 1)
            #expect(report.merchantAudit == 1)
            #expect(try await owner.query("SELECT nonce FROM flexcharge.webhook_nonces").rows.map { try $0.decode("nonce", as: String.self) } == ["new"])

            // The floors hold whatever a caller passes: zero retention deletes every finished order
            // older than a day, and still nothing live and nothing younger.
            _ = try await worker.query("SELECT * FROM flexcharge.prune_outbox(0, 100, interval '0', interval '0', interval '0')")
            let afterZero = Set(try await owner.query("SELECT order_id FROM flexcharge.outbox").rows.map { try $0.decode("order_id", as: String.self) })
            #expect(afterZero == ["live-sibling", "awaiting", "running", "half-day"])
            // And the worker role has no DELETE of its own.
            await #expect(throws: PGError.self) { try await worker.execute("DELETE FROM flexcharge.outbox WHERE order_id = 'touched'") }
            await #expect(throws: PGError.self) { try await worker.execute("DELETE FROM flexcharge.attempts") }
            await worker.close()
            await owner.close()
        }
    }

    @Test func onePrunerAtATime() async throws {
        try await TestDatabase.with { db in
            let holder = db.session("holder")
            try await holder.query("SELECT pg_advisory_lock(hashtext($1))", [Pruner.lockKey])
            let session = db.session("pruner")
            let pruner = Pruner(policy: RetentionPolicy())
            #expect(try await pruner.pass(on: session) == nil)
            try await holder.query("SELECT pg_advisory_unlock(hashtext($1))", [Pruner.lockKey])
            #expect(try await pruner.pass(on: session) != nil)
            // The pass let go of the lock: another session gets it.
            #expect(try await holder.query("SELECT pg_try_advisory_lock(hashtext($1)) AS ok", [Pruner.lockKey]).first!.decode("ok", as: Bool.self))
            await holder.close()
            await session.close()
        }
    }

    @Test func theWorkersServicePrunesOnItsIntervalAndStopsWhenCancelled() async throws {
        try await TestDatabase.with { db in
            let owner = db.session()
            let old = try await Self.insertEvent(order: "old", kind: "transmit", on: owner)
            let young = try await Self.insertEvent(order: "young", kind: "transmit", on: owner)
            try await owner.execute(
                """
                UPDATE flexcharge.outbox SET state = 'succeeded',
                       created_at = CASE WHEN id = $1 THEN now() - interval '41 days' ELSE now() END,
                       updated_at = CASE WHEN id = $1 THEN now() - interval '40 days' ELSE now() END
                """, [old])
            let service = RetentionService(
                policy: RetentionPolicy(), interval: .milliseconds(200),
                database: PGConfiguration(url: Self.url(db.url, role: "flexcharge_worker")))
            let running = Task { try await service.run() }
            var remaining: [Int64] = []
            for _ in 0..<150 {
                remaining = try await owner.query("SELECT id FROM flexcharge.outbox ORDER BY id").rows.map { try $0.decode("id") }
                if remaining == [young] { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(remaining == [young])
            running.cancel()
            let stopped = Task { try? await running.value }
            #expect(await result(of: stopped, within: .seconds(20)) != nil)
            await owner.close()
        }
    }

    /// A month of traffic, one simulated day at a time. Time moves forward the way the pruner sees
    /// it: day d of N happens N - d days ago (rows dated so by the owner), and the pass at the end
    /// of day d asks for each retention plus those N - d days, which is what a pass on that day
    /// would have deleted.
    @Test func aSimulatedMonthEndsWithFlatTablesAnUnchangedClaimCostAndIndexedReports() async throws {
        try await TestDatabase.with { db in
            let owner = db.session()
            try await owner.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m', 'sandbox')")
            let worker = PGSession(configuration: PGConfiguration(url: Self.url(db.url, role: "flexcharge_worker")), name: "pruner")
            let days = 30, ordersPerDay = 100
            let base = RetentionPolicy(
                completed: Self.day * 3, failed: Self.day * 5, rescued: Self.day * 7, attempts: Self.day * 7,
                audit: Self.day * 400, webhookNonces: .seconds(3600), batchSize: 150)
            var rows: [[String: Int]] = [], sizes: [[String: Int]] = [], claimBlocks: [Int] = []
            var vacuumed: String?, waitedForSnapshots: Duration = .zero
            for d in 1...days {
                let ago = days - d  // this simulated day is `ago` days before today
                try await owner.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    SELECT k, 'm', 'd' || $1 || '-' || g, 'cit', 'website', 'https://m.example',
                           '{"transaction": {"amount": 1500, "currency": "USD"}}'::jsonb
                      FROM generate_series(1, $2::int) g, unnest(ARRAY['transmit', 'evaluate']) k ORDER BY g, k DESC
                    """, [d, ordersPerDay])
                try await owner.execute(
                    "UPDATE flexcharge.outbox SET created_at = now() - make_interval(days => $1::int) WHERE state = 'pending'", [ago])
                // Claim everything through the worker's claim(), counting the buffers it touches.
                var blocks = 0, claimed = 0
                while true {
                    let (count, touched) = try await Self.claim(on: owner)
                    if count == 0 { break }
                    claimed += count
                    blocks += touched
                    try await Self.complete(ago: ago, on: owner)
                }
                #expect(claimed == 2 * ordersPerDay, "day \(d)")
                claimBlocks.append(blocks)
                // Evaluates that awaited their outcome two days ago are settled today.
                try await owner.execute(
                    """
                    UPDATE flexcharge.outbox SET state = 'succeeded', decision = 'APPROVED', completed_at = now() - make_interval(days => $1::int),
                           updated_at = now() - make_interval(days => $1::int)
                     WHERE state = 'awaiting_outcome' AND created_at <= now() - make_interval(days => $1::int + 2)
                    """, [ago])
                try await owner.execute(
                    """
                    INSERT INTO flexcharge.outcome_events (source, merchant_id, event_id, fc_event, fc_order_id, received_at, last_delivery_at)
                    SELECT 'webhook', 'm', NULL, 'order.completed', 'unknown-' || $1 || '-' || g,
                           now() - make_interval(days => $1::int), now() - make_interval(days => $1::int) FROM generate_series(1, 2) g;
                    """, [ago])
                try await owner.execute(
                    """
                    INSERT INTO flexcharge.webhook_nonces (merchant_id, nonce, seen_at)
                    SELECT 'm', 'n-' || $1 || '-' || g, now() - make_interval(days => $1::int) FROM generate_series(1, 20) g
                    """, [ago])

                let shifted = Self.day * ago
                var policy = base
                policy.completed += shifted; policy.failed += shifted; policy.rescued += shifted; policy.attempts += shifted
                policy.webhookNonces += shifted
                _ = try #require(try await Pruner(policy: policy).pass(on: worker))
                // What autovacuum does between passes (the outbox is tuned to be vacuumed early, 0003).
                // A simulated day lasts seconds, a real one a day: first let every snapshot older than
                // yesterday's vacuum end, in any database of the cluster. On PostgreSQL 14 and 15 a
                // B-tree page emptied by a vacuum is reused only once no snapshot anywhere in the cluster
                // predates it (the heap only waits for this database's), so the suites running beside
                // this one would otherwise grow the outbox's indexes by the page a day nothing reuses.
                if let mark = vacuumed, waitedForSnapshots < .seconds(60) { waitedForSnapshots += try await Self.waitForSnapshotsOlderThan(mark, on: owner) }
                try await owner.execute("VACUUM ANALYZE flexcharge.outbox, flexcharge.attempts, flexcharge.outcome_events, flexcharge.webhook_nonces")
                vacuumed = try await owner.query(
                    "SELECT (txid_snapshot_xmax(txid_current_snapshot()) % 4294967296)::text AS x").first!.decode("x")
                var counts: [String: Int] = [:], bytes: [String: Int] = [:]
                for table in ["outbox", "attempts", "outcome_events", "webhook_nonces"] {
                    counts[table] = try await owner.query("SELECT count(*)::int AS n FROM flexcharge.\(table)").first!.decode("n")
                    bytes[table] = try await owner.query(
                        "SELECT pg_total_relation_size($1::regclass)::int AS n", ["flexcharge.\(table)"]).first!.decode("n")
                }
                rows.append(counts)
                sizes.append(bytes)
            }

            // Nothing live was lost: every order of the last days is whole, and no awaiting event went.
            let live = try await owner.query(
                "SELECT count(*)::int AS n FROM flexcharge.outbox WHERE state NOT IN ('succeeded', 'skipped', 'failed', 'dead')").first!.decode("n", as: Int.self)
            #expect(live == 5 * 2)  // the evaluates of the last two days still awaiting their outcome
            // Flat from the third week on: rows within 10 %, sizes not growing by more than a fifth.
            for table in ["outbox", "attempts", "outcome_events", "webhook_nonces"] {
                let steady = rows[19...].map { $0[table]! }
                #expect(steady.max()! <= steady.min()! * 11 / 10 + 2, "\(table) rows \(steady)")
                #expect(sizes[days - 1][table]! <= sizes[19][table]! * 6 / 5,
                        "\(table) bytes \(sizes.map { $0[table]! }), \(waitedForSnapshots) waited for other snapshots")
            }
            // And retention did delete: a month of traffic, about a week of it left.
            #expect(rows[days - 1]["outbox"]! < 2 * ordersPerDay * days / 3, "\(rows[days - 1])")
            #expect(rows[days - 1]["attempts"]! < 2 * ordersPerDay * days / 3, "\(rows[days - 1])")
            // The claim touched about as many buffers on the last days as in the first week (day 1
            // excluded: its claims ran before the table was ever analyzed).
            let early = claimBlocks[1..<6].reduce(0, +) / 5, late = claimBlocks[(days - 5)...].reduce(0, +) / 5
            #expect(late <= early * 3 / 2, "claim buffers per day \(claimBlocks)")

            // Report and status read indexes (seq scans disabled: every outbox access must have an index path).
            try await owner.execute("ANALYZE flexcharge.outbox")
            try await owner.execute("SET enable_seqscan = off")
            let report = try await Self.plan(
                """
                SELECT * FROM flexcharge.daily_report
                 WHERE day BETWEEN (now() - interval '2 days')::date AND now()::date AND (NULL::text IS NULL OR merchant_id = NULL)
                """, on: owner)
            #expect(report.contains("outbox_by_day"), "\(report)")
            #expect(!report.contains("Seq Scan on outbox"), "\(report)")
            let status = try await Self.plan("SELECT * FROM flexcharge.queue_health", on: owner)
            #expect(status.contains("outbox_unfinished"), "\(status)")
            #expect(!status.contains("Seq Scan on outbox"), "\(status)")
            await worker.close()
            await owner.close()
        }
    }

    // MARK: - helpers

    private static func insertEvent(order: String, kind: String, on session: PGSession) async throws -> Int64 {
        try await session.query(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
            VALUES ($1, 'm', $2, 'cit', 'website', 'https://m.example', '{"transaction": {"amount": 1500, "currency": "USD"}}')
            RETURNING id
            """, [kind, order]).first!.decode("id")
    }

    /// One claim of up to 50 events as the worker makes it; returns how many and the shared buffers it touched.
    private static func claim(on session: PGSession) async throws -> (Int, Int) {
        let plan: String = try await session.query(
            """
            EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON, COSTS OFF, TIMING OFF)
            SELECT count(*) FROM flexcharge.claim('soak', 50, $1::integer[], interval '60 seconds')
            """, [Lane.claimCaps(total: 50, others: 50)]).first!.decode(0)
        let top = try #require((try JSONSerialization.jsonObject(with: Data(plan.utf8)) as? [[String: Any]])?.first?["Plan"] as? [String: Any])
        let scan = try #require((top["Plans"] as? [[String: Any]])?.first)
        let rows = try #require(scan["Actual Rows"] as? Int)
        let blocks = (top["Shared Hit Blocks"] as? Int ?? 0) + (top["Shared Read Blocks"] as? Int ?? 0)
        return (rows, blocks)
    }

    /// Finishes the claimed events as workers would have on the simulated day: most succeed (a tenth
    /// of the evaluates approved), every twentieth order fails, every twentieth evaluate awaits its
    /// outcome; one ledger row per event and an outcome row per approved evaluate.
    private static func complete(ago: Int, on session: PGSession) async throws {
        try await session.execute(
            """
            WITH done AS (
                UPDATE flexcharge.outbox o
                   SET state = CASE WHEN n % 20 = 3 THEN CASE o.kind WHEN 'evaluate' THEN 'dead' ELSE 'failed' END
                                    WHEN n % 20 = 7 AND o.kind = 'evaluate' THEN 'awaiting_outcome'
                                    ELSE 'succeeded' END,
                       decision = CASE WHEN o.kind <> 'evaluate' OR n % 20 = 3 THEN NULL
                                       WHEN n % 20 = 7 THEN 'CHALLENGE'
                                       WHEN n % 10 = 1 THEN 'APPROVED' ELSE 'DECLINED' END,
                       order_session_key = CASE WHEN o.kind = 'evaluate' THEN 'fc-' || o.id END,
                       environment = 'sandbox', lease_owner = NULL, lease_expires_at = NULL, attempts = 1,
                       completed_at = now() - make_interval(days => $1::int), updated_at = now() - make_interval(days => $1::int)
                  FROM (SELECT id, split_part(order_id, '-', 2)::int AS n FROM flexcharge.outbox WHERE state = 'running') r
                 WHERE o.id = r.id
                RETURNING o.id, o.state, o.decision
            ), ledger AS (
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at, finished_at, http_status)
                SELECT id, 1, 'send', 'soak', 'sandbox', now() - make_interval(days => $1::int), now() - make_interval(days => $1::int), 200 FROM done
            )
            INSERT INTO flexcharge.outcome_events (source, merchant_id, event_id, fc_event, fc_order_id, received_at, last_delivery_at, decision)
            SELECT 'webhook', 'm', id, 'order.approved', 'fc-' || id, now() - make_interval(days => $1::int), now() - make_interval(days => $1::int), 'APPROVED'
              FROM done WHERE decision = 'APPROVED'
            """, [ago])
    }

    /// Waits (at most 30 s) until no other session of the cluster holds a snapshot or transaction
    /// older than `xid` (a 32-bit transaction id as text); returns how long it waited.
    private static func waitForSnapshotsOlderThan(_ xid: String, on session: PGSession) async throws -> Duration {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < .seconds(30) {
            let older: Int = try await session.query(
                """
                SELECT count(*)::int AS n FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND greatest(age(backend_xmin), age(backend_xid)) > age($1::xid)
                """, [xid]).first!.decode("n")
            if older == 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return clock.now - start
    }

    private static func plan(_ sql: String, on session: PGSession) async throws -> String {
        try await session.query("EXPLAIN " + sql).rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
    }

    /// The database URL with a role every statement runs as (the test's login may SET ROLE to any).
    private static func url(_ url: String, role: String) -> String {
        url + (url.contains("?") ? "&" : "?") + "options=-c%20role%3D\(role)"
    }
}
