import Foundation
import LibPQ
import Testing
import TestSupport

/// flexcharge.claim() in SQL alone.
@Suite struct ClaimTests {
    @Test func eventsWaitingForTheirOrderNeverCrowdOutClaimableOnes() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            // 20 orders whose transmit is in backoff: their evaluates are due but must wait.
            try await session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                SELECT k, 'm1', 'o-' || g, 'cit', 'website', 's', '{"transaction": {"amount": 1500}}'
                  FROM generate_series(1, 20) g, unnest(ARRAY['transmit', 'evaluate']) k ORDER BY g, k DESC
                """)
            try await session.execute(
                "UPDATE flexcharge.outbox SET next_attempt_at = now() + interval '1 hour', attempts = 1 WHERE kind = 'transmit'")
            // Then one claimable order, newest of all.
            let ready: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('evaluate', 'm1', 'ready', 'cit', 'website', 's', '{"transaction": {"amount": 1500}}') RETURNING id
                """).first!.decode("id")
            let claimed = try await session.query(
                "SELECT id FROM flexcharge.claim('w', 4, ARRAY[4, 4, 4, 4], interval '1 minute')").rows.map { try $0.decode("id", as: Int64.self) }
            #expect(claimed == [ready])
        }
    }
}
