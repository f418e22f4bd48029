import Foundation
import LibPQ
import Testing
import TestSupport

@Suite struct ReportCommandTests {
    /// What the report must say about ``SeededDataset`` for 2026-11-20, worked out by hand:
    /// - m1, site D1 (no site_url: the descriptor), CIT call center: the skipped transmit o4.
    /// - m1, a.example, CIT website, sandbox: transmit o1 (transmitted), evaluates o1 (APPROVED,
    ///   1000 cents, after 3 attempts: still one event), o2 (DECLINED), o3 (CHALLENGE, awaiting).
    /// - m1, a.example, MIT, production: o5 (SUBMITTED, awaiting), o6 (APPROVED, 2500 cents).
    /// - m2, b.example, CIT website, sandbox: transmit o7 failed, evaluate o8 dead.
    /// o9 is on 2026-11-21, outside the period.
    /// None is test traffic, none was refunded, cancelled or charged back: net equals gross.
    static let expected: Set<String> = [
        "2026-11-20,m1,D1,D1,cit,call_center,,false,1,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0",
        "2026-11-20,m1,a.example,D1,cit,website,sandbox,false,4,1,3,1,1000,1,1,1,0,0,0,0,0,0,0,0,1000,0",
        "2026-11-20,m1,a.example,D1,mit,,production,false,2,0,2,1,2500,0,0,1,0,0,0,0,0,0,0,0,2500,0",
        "2026-11-20,m2,b.example,D2,cit,website,sandbox,false,2,0,0,0,0,0,0,0,1,0,1,0,0,0,0,0,0,0",
    ]

    @Test func theReportEqualsTheHandComputedTable() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            try await SeededDataset.seed(session)
            await session.close()
            let run = try await runCLI(["report", "--from", "2026-11-20", "--to", "2026-11-20", "--format", "csv"], environment: ["DATABASE_URL": db.url])
            #expect(run.status == 0, "\(run.stderr)")
            let lines = run.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "day,merchant_id,site,descriptor,channel,origin,environment,is_test,events,transmitted,evaluated,approved,approved_cents,declined,challenge,pending,failed,skipped,dead,cancelled,expired,refunded_cents,cancelled_cents,chargeback_cents,net_cents,unpriced_adjustments")
            #expect(Set(lines.dropFirst()) == Self.expected)
            #expect(lines.count == Self.expected.count + 1)

            let json = try await runCLI(["report", "--from", "2026-11-20", "--to", "2026-11-21", "--merchant", "m2", "--format", "json"], environment: ["DATABASE_URL": db.url])
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
            #expect(rows.count == 2)
            #expect(rows.map { $0["approved_cents"] as? Int } == [0, 4200])
            #expect(rows.map { $0["net_cents"] as? Int } == [0, 4200])
            #expect(rows.map { $0["is_test"] as? Bool } == [false, false])

            let table = try await runCLI(["report", "--from", "2026-11-20", "--to", "2026-11-20"], environment: ["DATABASE_URL": db.url])
            #expect(table.stdout.contains("approved_cents"))
            #expect(table.stdout.split(separator: "\n").count == 5)
        }
    }

    @Test(arguments: [
        (["--from", "2026-13-01", "--to", "2026-11-20"], "--from and --to must be dates"),
        (["--from", "2026-11-21", "--to", "2026-11-20"], "--from must not be after --to"),
        (["--from", "2026-11-20", "--to", "2026-11-20", "--merchant", "nobody"], "unknown merchant nobody"),
        (["--from", "2026-11-20", "--to", "2026-11-20", "--format", "xml"], "--format must be table, csv or json"),
    ])
    func badInputGetsOneLineAndStatusTwo(arguments: [String], expected: String) async throws {
        try await TestDatabase.with { db in
            let run = try await runCLI(["report"] + arguments, environment: ["DATABASE_URL": db.url])
            #expect(run.status == 2)
            #expect(run.stderr == "flexcharge-outbox: \(expected)" + (run.stderr.hasSuffix("20\n") ? "" : run.stderr.dropFirst("flexcharge-outbox: \(expected)".count)))
            #expect(run.stderr.contains(expected))
            #expect(run.stderr.split(separator: "\n").count == 1)
        }
    }
}

@Suite struct OperatorCommandTests {
    @Test func retrySkipShowAndStatusWorkOnTheSeededQueue() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let ids = try await SeededDataset.seed(session)
            let env = ["DATABASE_URL": db.url]

            // status: a dead event crosses the default threshold -> exit 3, JSON parses.
            let status = try await runCLI(["status", "--json"], environment: env)
            #expect(status.status == 3)
            let report = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as! [String: Any]
            #expect((report["totals"] as? [String: Int])?["dead"] == 1)
            #expect((report["alerts"] as? [String])?.first?.contains("dead") == true)

            // events show: the event and its three attempts.
            let show = try await runCLI(["events", "show", String(ids[1])], environment: env)
            #expect(show.status == 0)
            #expect(show.stdout.contains("APPROVED"))
            #expect(show.stdout.split(separator: "\n").filter { $0.contains("seed") }.count == 3)
            let list = try await runCLI(["events", "list", "--state", "dead"], environment: env)
            #expect(list.stdout.contains("o8"))
            #expect(!list.stdout.contains("o9"))

            // The dead evaluate o8 was first sent 25 h ago, past FlexCharge's idempotency window:
            // requeued as a lookup only (never sent again), its first claim kept, the reason in its history.
            // (Its first claim 25 hours ago: past the window.)
            try await session.execute("UPDATE flexcharge.outbox SET first_claimed_at = now() - interval '25 hours' WHERE id = $1", [ids[8]])
            let firstClaimed = try await session.query("SELECT first_claimed_at FROM flexcharge.outbox WHERE id = $1", [ids[8]]).first!.decode(0, as: Date?.self)
            let lookup = try await runCLI(["retry", String(ids[8]), "--actor", "bob"], environment: env)
            #expect(lookup.status == 0, "\(lookup.stderr)")
            #expect(lookup.stdout.contains("lookup"))
            let requeued = try await session.query(
                "SELECT state, next_action, first_claimed_at FROM flexcharge.outbox WHERE id = $1", [ids[8]]).first!
            #expect(try requeued.decode("state", as: String.self) == "pending")
            #expect(try requeued.decode("next_action", as: String.self) == "lookup")
            #expect(try requeued.decode("first_claimed_at", as: Date?.self) == firstClaimed)
            let note = try await session.query(
                "SELECT error FROM flexcharge.attempts WHERE event_id = $1 AND action = 'operator_retry'", [ids[8]]).first!.decode(0, as: String.self)
            #expect(note.contains("idempotency window") && note.contains("never sent again"), "\(note)")
            // The failed transmit o7 is requeued with its key, and the requeue is in its history.
            let keyBefore = try await session.query("SELECT idempotency_key FROM flexcharge.outbox WHERE id = $1", [ids[7]]).first!.decode(0, as: String.self)
            let retried = try await runCLI(["retry", String(ids[7]), "--actor", "bob"], environment: env)
            #expect(retried.status == 0, "\(retried.stderr)")
            let row = try await session.query("SELECT state, idempotency_key FROM flexcharge.outbox WHERE id = $1", [ids[7]]).first!
            #expect(try row.decode("state", as: String.self) == "pending")
            #expect(try row.decode("idempotency_key", as: String.self) == keyBefore)
            // Skip the requeued evaluate instead, with a reason; then status is healthy again.
            let skipped = try await runCLI(["skip", String(ids[8]), "--reason", "checked with the merchant", "--actor", "bob"], environment: env)
            #expect(skipped.status == 0)
            let history = try await session.query(
                "SELECT action, worker, error FROM flexcharge.attempts WHERE event_id = ANY($1::bigint[]) AND action LIKE 'operator%' ORDER BY id", [[ids[7], ids[8]]]).rows
            #expect(try history.map { try $0.decode("action", as: String.self) } == ["operator_retry", "operator_retry", "operator_skip"])
            #expect(try history.allSatisfy { try $0.decode("worker", as: String.self) == "bob" })
            try await session.execute("UPDATE flexcharge.outbox SET state = 'succeeded' WHERE id = $1", [ids[7]])
            let healthy = try await runCLI(["status"], environment: env)
            #expect(healthy.status == 0, "\(healthy.stdout)")
            #expect(healthy.stdout.contains("healthy"))

            for bad in [["events", "show", "999999"], ["events", "show", "abc"], ["retry", "999999"], ["skip", "999999", "--reason", "x"],
                        ["retry", String(ids[0])], ["events", "list", "--state", "lost"], ["events", "list", "--since", "yesterday"]] {
                let run = try await runCLI(bad, environment: env)
                #expect(run.status == 2, "\(bad): \(run.stderr)")
                #expect(run.stderr.split(separator: "\n").count == 1, "\(bad)")
            }
            await session.close()
        }
    }
}
