import Foundation
import LibPQ
import Testing
import TestSupport

/// `flexcharge-outbox prune`: one retention pass with a worker login; skips while another pruner
/// (a worker) holds the lock.
@Suite struct PruneCommandTests {
    @Test func prunesAsTheWorkerRoleAndSkipsWhileAnotherPrunerHoldsTheLock() async throws {
        try await TestDatabase.with { db in
            let owner = db.session()
            try await owner.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('transmit', 'm', 'old', 'cit', 'website', 's', '{"transaction": {"amount": 100}}'),
                       ('transmit', 'm', 'new', 'cit', 'website', 's', '{"transaction": {"amount": 100}}')
                """)
            try await owner.execute(
                """
                UPDATE flexcharge.outbox SET state = 'succeeded',
                       created_at = now() - interval '20 days', updated_at = now() - interval '20 days' WHERE order_id = 'old'
                """)
            let asWorker = db.url + (db.url.contains("?") ? "&" : "?") + "options=-c%20role%3Dflexcharge_worker"

            try await owner.query("SELECT pg_advisory_lock(hashtext('flexcharge.prune'))")
            let skipped = try await runCLI(["prune", "--database-url", asWorker, "--retain-completed-days", "10"])
            #expect(skipped.status == 0, "\(skipped.stderr)")
            #expect(skipped.stdout.contains("another pruner holds the lock"), "\(skipped.stdout)")
            try await owner.query("SELECT pg_advisory_unlock(hashtext('flexcharge.prune'))")

            let pruned = try await runCLI(["prune", "--database-url", asWorker, "--retain-completed-days", "10"])
            #expect(pruned.status == 0, "\(pruned.stderr)")
            #expect(pruned.stdout.contains("pruned 1 events of 1 orders"), "\(pruned.stdout)")
            let left = try await owner.query("SELECT order_id FROM flexcharge.outbox").rows.map { try $0.decode("order_id", as: String.self) }
            #expect(left == ["new"])

            let refused = try await runCLI(["prune", "--database-url", asWorker, "--prune-batch-size", "0"])
            #expect(refused.status == 2)
            await owner.close()
        }
    }
}
