import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// flexcharge.claim() in SQL alone.
@Suite struct ClaimTests {
    @Test func eventsWaitingForTheirOrderNeverCrowdOutClaimableOnes() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            // 20 orders whose evaluate is in backoff: their cancels are due but must wait for it.
            // (Before migration 0014 this test used transmits; an earlier transmit blocks nothing now.)
            try await session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                SELECT k, 'm1', 'o-' || g, 'cit', 'website', 's',
                       CASE k WHEN 'evaluate' THEN '{"transaction": {"amount": 1500}}' ELSE '{}' END::jsonb
                  FROM generate_series(1, 20) g, unnest(ARRAY['evaluate', 'cancel']) k ORDER BY g, k DESC
                """)
            try await session.execute(
                "UPDATE flexcharge.outbox SET next_attempt_at = now() + interval '1 hour', attempts = 1 WHERE kind = 'evaluate'")
            // Then one claimable order, newest of all.
            let ready: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('cancel', 'm1', 'ready', 'cit', 'website', 's', '{}') RETURNING id
                """).first!.decode("id")
            let claimed = try await session.query(
                "SELECT id FROM flexcharge.claim('w', 4, ARRAY[4, 4, 4, 4], interval '1 minute')").rows.map { try $0.decode("id", as: Int64.self) }
            #expect(claimed == [ready])
        }
    }

    /// The per-order rule of migrations/0014: an earlier transmit blocks only later transmits of its
    /// order; an earlier evaluate blocks everything after it.
    @Test func anOrdersTransmitBlocksOnlyItsLaterTransmits() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            func insert(_ kind: String, _ payload: String) async throws -> Int64 {
                try await session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    VALUES ($1, 'm1', 'A-1', 'cit', 'website', 's', $2::jsonb) RETURNING id
                    """, [kind, PGJSON(text: payload)]).first!.decode("id")
            }
            func claim() async throws -> [Int64] {
                try await session.query("SELECT id FROM flexcharge.claim('w', 10, ARRAY[10, 10, 10, 10], interval '1 minute') ORDER BY id")
                    .rows.map { try $0.decode("id", as: Int64.self) }
            }
            func finish(_ id: Int64) async throws {
                try await session.execute(
                    "UPDATE flexcharge.outbox SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, completed_at = now() WHERE id = $1",
                    [id])
            }
            let amount = #"{"transaction": {"amount": 1500}}"#
            let transmit = try await insert("transmit", amount)
            // The transmit failed and is retrying in an hour (pending, not due).
            _ = try await claim()
            try await session.execute(
                """
                UPDATE flexcharge.outbox SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                       next_attempt_at = now() + interval '1 hour' WHERE id = $1
                """, [transmit])
            let evaluate = try await insert("evaluate", amount)
            let secondTransmit = try await insert("transmit", amount)
            let refund = try await insert("refund", #"{"amountCents": 500}"#)
            // The evaluate is not raised into the transmit's way, nor the transmit into the CIT lane.
            let lanes = try await session.query("SELECT claim_lane FROM flexcharge.outbox WHERE id = $1", [transmit]).first!
            #expect(try lanes.decode("claim_lane", as: Int.self) == Lane.transmit.rawValue)

            // The evaluate goes at once; the refund waits for it, the second transmit for both.
            #expect(try await claim() == [evaluate])
            #expect(try await claim() == [])
            try await finish(evaluate)
            #expect(try await claim() == [refund])
            try await finish(refund)
            // Only the first transmit (still in backoff) holds the second one back.
            #expect(try await claim() == [])
            try await session.execute("UPDATE flexcharge.outbox SET next_attempt_at = now() WHERE id = $1", [transmit])
            #expect(try await claim() == [transmit])
            try await finish(transmit)
            #expect(try await claim() == [secondTransmit])
        }
    }

    /// The breaker filter with test events (they route to the sandbox whatever the switches): a
    /// merchant live on production with production held still offers its test events, unless the
    /// sandbox is held too; a merchant with no pending test event stays held.
    @Test func testEventsPassAHeldLiveBreakerButNotAHeldSandbox() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute(
                "INSERT INTO flexcharge.merchants (merchant_id, cit_website, cit_call_center, mit) VALUES ('m1', 'production', 'production', 'production')")
            func hold(_ environment: String) async throws {
                try await session.execute(
                    """
                    INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, opened_at, retry_at)
                    VALUES ('m1', $1, 'open', 5, now(), now() + interval '1 hour')
                    """, [environment])
            }
            func insert(order: String, isTest: Bool) async throws -> Int64 {
                try await session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ('evaluate', 'm1', $1, 'cit', 'website', 's', '{"transaction": {"amount": 1500}}', $2) RETURNING id
                    """, [order, isTest]).first!.decode("id")
            }
            func claim() async throws -> [Int64: String] {
                var claimed: [Int64: String] = [:]
                for row in try await session.query(
                    "SELECT id, environment FROM flexcharge.claim('w', 10, ARRAY[10, 10, 10, 10], interval '1 minute')").rows {
                    claimed[try row.decode("id")] = try row.decode("environment")
                }
                return claimed
            }
            func giveBack() async throws {
                try await session.execute(
                    "UPDATE flexcharge.outbox SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL WHERE state = 'running'")
            }
            try await hold("production")
            let live = try await insert(order: "live", isTest: false)
            #expect(try await claim().isEmpty)  // production held, no test event: the merchant is held

            let test = try await insert(order: "test", isTest: true)
            let offered = try await claim()
            #expect(offered[test] == "sandbox")
            // The live event may come along; the worker gives it back before any call (layer 2 of 0013).
            #expect(offered[live] == nil || offered[live] == "production")
            try await giveBack()

            try await hold("sandbox")
            #expect(try await claim().isEmpty)  // every environment held
        }
    }
}
