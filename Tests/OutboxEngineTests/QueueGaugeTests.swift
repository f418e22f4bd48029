import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The queue gauges (`flexcharge_outbox_queue_depth`, `flexcharge_outbox_oldest_pending_seconds`) are
/// set from ``OutboxStore/laneDepths(on:)`` for the lanes it returns. It must return every lane, with
/// zeros when nothing is pending: a lane left out keeps its last values, so an alert on a backlog that
/// has drained (deploy/prometheus, FlexChargeOutboxBacklogOld) would never clear.
@Suite struct QueueGaugeTests {
    @Test func everyLaneIsReportedAndADrainedLaneFallsBackToZero() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let lanes = try await session.query("SELECT name FROM flexcharge.lanes ORDER BY lane").rows
                .map { try $0.decode("name", as: String.self) }
            #expect(lanes.count == 4)

            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            let id: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1500}}')
                RETURNING id
                """).first!.decode("id")
            try await session.execute("UPDATE flexcharge.outbox SET created_at = now() - interval '42 seconds' WHERE id = $1", [id])

            let backlog = try await OutboxStore().laneDepths(on: session)
            #expect(backlog.map(\.lane).sorted() == lanes.sorted())
            let cit = try #require(backlog.first { $0.lane == "cit_evaluate" })
            #expect(cit.depth == 1 && cit.oldestAgeSeconds >= 42)
            #expect(backlog.filter { $0.lane != "cit_evaluate" }.allSatisfy { $0.depth == 0 && $0.oldestAgeSeconds == 0 })

            #expect(backlog.allSatisfy { $0.awaitingOutcome == 0 && $0.dead == 0 })

            // Dead and awaiting-outcome events have gauges of their own, and leave the pending depth.
            try await session.execute("UPDATE flexcharge.outbox SET state = 'dead', completed_at = now() WHERE id = $1", [id])
            let parked = try await OutboxStore().laneDepths(on: session)
            #expect(parked.first { $0.lane == "cit_evaluate" }.map { $0.dead == 1 && $0.depth == 0 && $0.awaitingOutcome == 0 } == true)
            try await session.execute("UPDATE flexcharge.outbox SET state = 'awaiting_outcome', completed_at = NULL WHERE id = $1", [id])
            let awaiting = try await OutboxStore().laneDepths(on: session)
            #expect(awaiting.first { $0.lane == "cit_evaluate" }.map { $0.awaitingOutcome == 1 && $0.dead == 0 } == true)

            // The lane drains: it is still reported, now with zeros.
            try await session.execute("DELETE FROM flexcharge.outbox WHERE id = $1", [id])
            let drained = try await OutboxStore().laneDepths(on: session)
            #expect(drained.map(\.lane).sorted() == lanes.sorted())
            #expect(drained.allSatisfy { $0.depth == 0 && $0.oldestAgeSeconds == 0 && $0.awaitingOutcome == 0 && $0.dead == 0 })
        }
    }
}
