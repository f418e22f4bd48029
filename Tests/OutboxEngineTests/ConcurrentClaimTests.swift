import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// claim() under concurrency: since 0029 it locks and updates its candidates by row address
/// (ctid), so the rule "never claimed twice" is checked here with claims that race each other
/// and with rows that change between a claim's snapshot and its lock.
@Suite struct ConcurrentClaimTests {
    /// Four sessions claim the same queue at once until it is empty: every event is claimed by
    /// exactly one of them, with one attempt, and none is left pending.
    @Test func racingClaimsTakeEveryEventExactlyOnce() async throws {
        try await TestDatabase.with { db in
            let setup = db.session()
            defer { Task { await setup.close() } }
            try await setup.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'sandbox'), ('m2', 'sandbox', 'sandbox')")
            // 400 transmits over 2 merchants and 200 orders (two per order: the later waits for the earlier).
            try await setup.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                SELECT 'transmit', 'm' || (1 + g % 2), 'o-' || (g % 200), 'cit', 'website', 's', '{"transaction": {"amount": 100}}'
                  FROM generate_series(1, 400) g
                """)
            let claimers = (0..<4).map { db.session("claimer-\($0)") }
            defer { for session in claimers { Task { await session.close() } } }
            let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for (n, session) in claimers.enumerated() {
                    group.addTask {
                        var mine: [Int64] = []
                        var empty = 0
                        while empty < 3 {
                            let ids = try await session.query(
                                "SELECT id FROM flexcharge.claim($1, 16, ARRAY[16, 16, 16, 16], interval '1 minute')", ["w\(n)"])
                                .rows.map { try $0.decode("id", as: Int64.self) }
                            if ids.isEmpty {
                                empty += 1
                                // Let the other claimers' transactions end, then finish what this one holds, so
                                // each order's later transmit becomes claimable.
                                try await Task.sleep(for: .milliseconds(20))
                            } else {
                                empty = 0
                            }
                            mine += ids
                            if !ids.isEmpty {
                                try await session.execute(
                                    """
                                    UPDATE flexcharge.outbox SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,
                                           completed_at = now() WHERE id = ANY($1::bigint[]) AND lease_owner = $2
                                    """, [ids, "w\(n)"])
                            }
                        }
                        return mine
                    }
                }
                var all: [Int64] = []
                for try await ids in group { all += ids }
                return all
            }
            #expect(claimed.count == 400)
            #expect(Set(claimed).count == claimed.count, "an event was claimed by two sessions")
            let left: Int = try await setup.query(
                "SELECT count(*) AS n FROM flexcharge.outbox WHERE state <> 'succeeded' OR attempts <> 1").first!.decode("n")
            #expect(left == 0)
        }
    }

    /// A row another transaction holds (here an operator's uncommitted edit, a new version still
    /// pending) is skipped by a claim, not waited for, claimed or lost; once the edit commits, the
    /// next claim takes it, once.
    @Test func aRowHeldByAnotherTransactionIsSkippedThenClaimedOnce() async throws {
        try await TestDatabase.with { db in
            let setup = db.session()
            let editor = db.session("editor")
            let claimer = db.session("claimer")
            defer { for session in [setup, editor, claimer] { Task { await session.close() } } }
            try await setup.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            let id: Int64 = try await setup.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('transmit', 'm1', 'o-1', 'cit', 'website', 's', '{"transaction": {"amount": 100}}') RETURNING id
                """).first!.decode("id")
            func claim(_ worker: String) async throws -> [Int64] {
                try await claimer.query("SELECT id FROM flexcharge.claim($1, 4, ARRAY[4, 4, 4, 4], interval '1 minute')", [worker])
                    .rows.map { try $0.decode("id", as: Int64.self) }
            }
            try await editor.execute("BEGIN")
            try await editor.execute("UPDATE flexcharge.outbox SET updated_at = now() WHERE id = $1", [id])
            #expect(try await claim("w1").isEmpty)
            try await editor.execute("COMMIT")
            #expect(try await claim("w2") == [id])
            #expect(try await claim("w3").isEmpty)
            let row = try await setup.query("SELECT state, attempts, lease_owner FROM flexcharge.outbox WHERE id = $1", [id]).first!
            #expect(try row.decode("state", as: String.self) == "running")
            #expect(try row.decode("attempts", as: Int.self) == 1)
            #expect(try row.decode("lease_owner", as: String.self) == "w2")
        }
    }
}
