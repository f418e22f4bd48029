import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// The worker's queue of events claimed ahead of its call slots, fed by real claims.
@Suite struct HeldEventsTests {
    @Test func citEvaluatesGoFirstOnlyThemFillCITSlotsAndUnstartedEventsAreGivenBack() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let store = OutboxStore()
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'sandbox')")
            func insert(_ kind: String, _ orders: [String], channel: String = "cit") async throws {
                try await session.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    SELECT $1::text, 'm1', o, $3::text, CASE WHEN $3::text = 'cit' THEN 'website' END, 's',
                           '{"transaction": {"amount": 1500}}'
                      FROM unnest($2::text[]) o
                    """, [kind, orders, channel])
            }
            func claim() async throws -> [ClaimedEvent] {
                try await store.claim(on: session, worker: "w", total: 10, laneCaps: [10, 10, 10, 10], lease: .seconds(60))
            }
            let held = HeldEvents()
            // A slot kept for CIT waits while only transmits are held: it must not take one.
            let citSlot = Task { await held.next(citOnly: true) }
            try await insert("transmit", ["t-1", "t-2", "t-3"])
            held.add(try await claim())
            let first = try #require(await held.next(citOnly: false))
            #expect(first.orderID == "t-1")
            try await insert("evaluate", ["cit-1"])
            held.add(try await claim())
            #expect(await citSlot.value?.orderID == "cit-1")
            // A CIT evaluate claimed after the transmits still goes before them.
            try await insert("evaluate", ["cit-2"])
            held.add(try await claim())
            #expect(await held.next(citOnly: false)?.orderID == "cit-2")
            // So does an MIT evaluate, behind CIT: lanes first, then age.
            try await insert("evaluate", ["mit-1"], channel: "mit")
            held.add(try await claim())
            #expect(held.count == 6 && held.nonCITCount == 4)
            let mit = try #require(await held.next(citOnly: false))
            #expect(mit.orderID == "mit-1")
            #expect(held.finish(mit.id) == 5)

            // Shutdown: the slot still waiting gets nothing; the two transmits never started come back.
            let idleCITSlot = Task { await held.next(citOnly: true) }
            while held.waitingSlots == 0 { await Task.yield() }  // close only once the slot waits
            let unstarted = held.close()
            #expect(await idleCITSlot.value == nil)
            #expect(await held.next(citOnly: false) == nil)
            #expect(unstarted.map(\.orderID) == ["t-2", "t-3"])
            #expect(held.count == 3)
            #expect(held.finish(first.id) == 2)

            try await store.release(unstarted.map(\.id), worker: "w", on: session)
            let rows = try await session.query(
                "SELECT state, attempts, first_claimed_at IS NULL AS never_claimed FROM flexcharge.outbox WHERE order_id IN ('t-2', 't-3')").rows
            #expect(rows.count == 2)
            for row in rows {
                #expect(try row.decode("state", as: String.self) == "pending")
                #expect(try row.decode("attempts", as: Int.self) == 0)
                #expect(try row.decode("never_claimed", as: Bool.self))
            }
            // Another worker's lease is never given back by this one.
            let others = try await claim()
            try await store.release(others.map(\.id), worker: "someone-else", on: session)
            let stillRunning = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'running' AND lease_owner = 'w'").first!
            #expect(try stillRunning.decode("n", as: Int.self) == 6)  // t-1, cit-1, cit-2, mit-1, and t-2, t-3 again
        }
    }
}
