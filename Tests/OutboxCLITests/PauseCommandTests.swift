import Foundation
import LibPQ
import Testing
import TestSupport

/// `flexcharge-outbox pause`, `resume`, `pauses`, `replay-skipped` and the pauses in `status`, run
/// as the operator role (migrations/0019_pause.sql's grants); the worker role's claim() reads them.
@Suite struct PauseCommandTests {
    @Test func anOperatorPausesResumesAndSeesWhoAndWhy() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let asOperator = operatorEnvironment(db)
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, mit, cit_website) VALUES ('shop', 'sandbox', 'sandbox')")
            let mit: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, descriptor, payload)
                VALUES ('transmit', 'shop', 'o1', 'mit', 'SHOP', '{"transaction": {"amount": 100}}') RETURNING id
                """).first!.decode("id")

            let paused = try await runCLI(["pause", "--merchant", "shop", "--channel", "mit", "--reason", "rotating keys", "--actor", "alice"],
                                          environment: asOperator)
            #expect(paused.status == 0, "\(paused.stderr)")
            #expect(paused.stdout.contains("paused merchant shop, channel mit")
                    && paused.stdout.contains("flexcharge-outbox resume --merchant shop --channel mit"), "\(paused.stdout)")
            let again = try await runCLI(["pause", "--merchant", "shop", "--channel", "mit", "--reason", "x"], environment: asOperator)
            #expect(again.status == 2 && again.stderr.contains("already paused (by alice"), "\(again.stderr)")
            for bad in [["pause", "--reason", "no scope"], ["pause", "--channel", "fax", "--reason", "x"],
                        ["pause", "--all", "--merchant", "shop", "--reason", "x"], ["pause", "--environment", "staging", "--reason", "x"],
                        ["pause", "--all", "--reason", " "], ["resume", "--merchant", "nobody"]] {
                let run = try await runCLI(bad, environment: asOperator)
                #expect(run.status == 2, "\(bad): \(run.stderr)")
            }

            // The worker's claim reads the pause: nothing claimed, the event untouched.
            try await session.execute("SET ROLE flexcharge_worker")
            #expect(try await session.query("SELECT id FROM flexcharge.claim('w', 10, ARRAY[10, 10, 10, 10], interval '1 minute')").rows.isEmpty)
            try await session.execute("RESET ROLE")
            #expect(try await session.query("SELECT state, attempts FROM flexcharge.outbox WHERE id = $1", [mit]).first!
                .decode("state", as: String.self) == "pending")

            let status = try await runCLI(["status", "--json", "--alert-oldest-seconds", "100000"], environment: asOperator)
            #expect(status.status == 0, "\(status.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as! [String: Any]
            let pauses = report["pauses"] as? [[String: Any]] ?? []
            #expect(pauses.count == 1)
            #expect(pauses.first?["pausedBy"] as? String == "alice" && pauses.first?["reason"] as? String == "rotating keys")
            #expect(pauses.first?["pendingEvents"] as? Int == 1)
            #expect((pauses.first?["scope"] as? [String: Any])?["channel"] as? String == "mit")
            let human = try await runCLI(["status", "--alert-oldest-seconds", "100000"], environment: asOperator)
            #expect(human.stdout.contains("paused:") && human.stdout.contains("alice") && human.stdout.contains("rotating keys"), "\(human.stdout)")
            let list = try await runCLI(["pauses"], environment: asOperator)
            #expect(list.status == 0 && list.stdout.contains("rotating keys"), "\(list.stdout)\(list.stderr)")

            let resumed = try await runCLI(["resume", "--merchant", "shop", "--channel", "mit", "--reason", "new keys", "--actor", "bob"],
                                           environment: asOperator)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try await runCLI(["pauses"], environment: asOperator).stdout.contains("nothing is paused"))
            let history = try await runCLI(["pauses", "--history", "--json"], environment: asOperator)
            let rows = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.count == 1 && rows.first?["resumedBy"] as? String == "bob" && rows.first?["resumeReason"] as? String == "new keys",
                    "\(history.stdout)")
            #expect(try await session.query("SELECT id FROM flexcharge.claim('w', 10, ARRAY[10, 10, 10, 10], interval '1 minute')")
                .rows.map { try $0.decode("id", as: Int64.self) } == [mit])
        }
    }

    @Test func replaySkippedRequeuesWhatWasSkippedWhileTheChannelWasOff() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let asOperator = operatorEnvironment(db)
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, cit_call_center) VALUES ('shop', 'sandbox', 'off')")
            let skipped: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('transmit', 'shop', 'o1', 'cit', 'call_center', 'https://shop.example', '{"transaction": {"amount": 100}}') RETURNING id
                """).first!.decode("id")
            _ = try await session.query("SELECT id FROM flexcharge.claim('w', 10, ARRAY[10, 10, 10, 10], interval '1 minute')")
            #expect(try await session.query("SELECT state FROM flexcharge.outbox WHERE id = $1", [skipped]).first!
                .decode("state", as: String.self) == "skipped")

            let stillOff = try await runCLI(["replay-skipped", "--merchant", "shop", "--since", "2020-01-01", "--actor", "bob"], environment: asOperator)
            #expect(stillOff.status == 0, "\(stillOff.stderr)")
            #expect(stillOff.stdout.contains("0 skipped event(s) requeued") && stillOff.stdout.contains("refused \(skipped): its channel is still off"),
                    "\(stillOff.stdout)")

            try await session.execute("UPDATE flexcharge.merchants SET cit_call_center = 'sandbox' WHERE merchant_id = 'shop'")
            let replayed = try await runCLI(["replay-skipped", "--merchant", "shop", "--since", "2020-01-01", "--channel", "cit_call_center",
                                             "--actor", "bob"], environment: asOperator)
            #expect(replayed.status == 0, "\(replayed.stderr)")
            #expect(replayed.stdout.contains("1 skipped event(s) requeued") && replayed.stdout.contains("requeued \(skipped) (send first)"),
                    "\(replayed.stdout)")
            let row = try await session.query("SELECT state, next_action FROM flexcharge.outbox WHERE id = $1", [skipped]).first!
            #expect(try row.decode("state", as: String.self) == "pending" && row.decode("next_action", as: String.self) == "send")
            let ledger = try await session.query(
                "SELECT worker, error FROM flexcharge.attempts WHERE event_id = $1 AND action = 'operator_retry'", [skipped]).first
            #expect(try ledger?.decode("worker", as: String.self) == "bob" && ledger?.decode("error", as: String.self) == "replayed (send first)")

            for bad in [["replay-skipped", "--merchant", "shop", "--since", "yesterday"],
                        ["replay-skipped", "--merchant", "shop", "--since", "2020-01-01", "--channel", "fax"]] {
                let run = try await runCLI(bad, environment: asOperator)
                #expect(run.status == 2, "\(bad): \(run.stderr)")
            }
        }
    }
}

/// DATABASE_URL for the CLI as the operator role.
private func operatorEnvironment(_ db: TestDatabase) -> [String: String] {
    ["DATABASE_URL": db.url + (db.url.contains("?") ? "&" : "?") + "options=-c%20role%3Dflexcharge_operator"]
}
