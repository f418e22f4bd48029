import Foundation
import LibPQ
import Testing
import TestSupport

/// `bench-sql` marks every pending event succeeded without calling FlexCharge: the production
/// binary refuses it unless given its hidden flag AND run on a database marked as a throwaway
/// benchmark database with nothing routed to FlexCharge production.
@Suite struct BenchSQLGuardTests {
    private static let flag = "--throwaway-database-marks-every-pending-event-succeeded"

    @Test func refusedWithoutTheFlagOnAnUnmarkedDatabaseAndWithProductionRoutes() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('bench', 'sandbox')")
            try await insertPending(3, on: session)

            let noFlag = try await runCLI(["bench-sql", "--database-url", db.url])
            #expect(noFlag.status == 2)
            #expect(noFlag.stderr.contains("bench-sql marks every pending event succeeded"), "\(noFlag.stderr)")

            let unmarked = try await runCLI(["bench-sql", Self.flag, "--database-url", db.url])
            #expect(unmarked.status == 2)
            #expect(unmarked.stderr.contains("is not marked as a throwaway benchmark database"), "\(unmarked.stderr)")
            #expect(try await pending(on: session) == 3)

            // Marked, but a merchant routes a channel to production: still refused.
            try await session.execute("ALTER DATABASE \(db.name) SET flexcharge.benchmark_database = 'throwaway'")
            try await session.execute("UPDATE flexcharge.merchants SET mit = 'production' WHERE merchant_id = 'bench'")
            let production = try await runCLI(["bench-sql", Self.flag, "--database-url", db.url])
            #expect(production.status == 2)
            #expect(production.stderr.contains("routes events to FlexCharge production"), "\(production.stderr)")
            #expect(try await pending(on: session) == 3)

            // Marked and sandbox-only: it drains.
            try await session.execute("UPDATE flexcharge.merchants SET mit = 'off' WHERE merchant_id = 'bench'")
            let allowed = try await runCLI(["bench-sql", Self.flag, "--database-url", db.url])
            #expect(allowed.status == 0, "\(allowed.stderr)")
            #expect(allowed.stdout.contains("drained 3 events"), "\(allowed.stdout)")
            #expect(try await pending(on: session) == 0)
            await session.close()
        }
    }

    private func insertPending(_ count: Int, on session: PGSession) async throws {
        try await session.execute(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
            SELECT 'transmit', 'bench', 'b-' || g, 'cit', 'website', 'https://bench.example',
                   '{"transaction": {"amount": 1500, "currency": "USD"}}'::jsonb
              FROM generate_series(1, $1::int) g
            """, [count])
    }

    private func pending(on session: PGSession) async throws -> Int {
        try await session.query("SELECT count(*)::int AS n FROM flexcharge.outbox WHERE state = 'pending'").first!.decode("n")
    }
}
