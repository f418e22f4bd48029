import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing

/// Pause and resume (migrations/0019_pause.sql, `PauseBoard`) with a real worker against the
/// simulator: paused events stay pending untouched (no attempt, no lease, not skipped) and go out
/// once on resume; and replaying events skipped while their channel was off.
@Suite struct PauseTests {
    static let claimSQL = "SELECT id FROM flexcharge.claim('probe', 50, ARRAY[50, 50, 50, 50], interval '1 minute')"

    func mitEvaluate(_ h: WorkerHarness, order: String, merchant: String = "m1") async throws -> Int64 {
        try await h.insert("evaluate", merchant: merchant, order: order, channel: "mit", site: nil, descriptor: "SHOES*ONLINE",
                           payload: SamplePayloads.evaluate(orderID: order, amountCents: 1500, payerEmail: "approve-\(order)@example.com", mit: true))
    }

    /// Sent evaluates per order id, as the simulator saw them.
    func evaluatesSent(_ h: WorkerHarness, _ sandbox: RunningSandbox? = nil) -> [String: Int] {
        (sandbox ?? h.sandbox).sandbox.ledger().requests.filter { $0.route == "POST /evaluate" }
            .compactMap(\.merchantOrderId).reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// The event is pending exactly as inserted: never claimed, no attempt, no ledger row.
    func expectUntouched(_ h: WorkerHarness, _ id: Int64) async throws {
        let row = try await h.event(id)
        #expect(try row.decode("state", as: String.self) == "pending")
        #expect(try row.decode("attempts", as: Int.self) == 0)
        #expect(try row.decode("environment", as: String?.self) == nil)
        #expect(try row.decode("first_claimed_at", as: Date?.self) == nil)
        #expect(try row.decode("last_error", as: String?.self) == nil)
        #expect(try await h.attempts(id).isEmpty)
    }

    @Test func aPausedMerchantsMITWaitsWhileCITFlowsAndGoesOnceOnResume() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let board = PauseBoard(session: h.session, actor: "alice")
            let scope = try PauseScope(merchantID: "m1", channel: "mit")
            try await board.pause(scope, reason: "rotating MIT credentials")
            try await h.runWorker {
                let mit = try await mitEvaluate(h, order: "mit-1")
                let cit = try await h.insert("evaluate", order: "cit-1", payload: h.approvedCITEvaluate(order: "cit-1"))
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [cit])
                let later = try await h.insert("evaluate", order: "cit-2", payload: h.approvedCITEvaluate(order: "cit-2"))
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [later])
                // Claims went by it (inserted first, before both CIT events): it waits untouched.
                try await expectUntouched(h, mit)
                #expect(try await h.session.query(Self.claimSQL).rows.isEmpty)
                #expect(evaluatesSent(h)["mit-1"] == nil)
                let active = try await board.active()
                #expect(active.count == 1 && active[0].pausedBy == "alice" && active[0].reason == "rotating MIT credentials")
                #expect(active[0].pendingEvents == 1)

                let resumed = try await PauseBoard(session: h.session, actor: "bob").resume(scope, reason: "done")
                #expect(resumed.resumedBy == "bob" && resumed.resumeReason == "done" && resumed.resumedAt != nil)
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [mit])
            }
            #expect(evaluatesSent(h) == ["mit-1": 1, "cit-1": 1, "cit-2": 1])
            #expect(try await board.active().isEmpty)
            let history = try await board.history()
            #expect(history.count == 1 && history[0].pausedBy == "alice" && history[0].resumedBy == "bob")
        }
    }

    /// A claim that returns nothing because everything pending is paused leaves the worker waiting
    /// for a NOTIFY or its poll interval (100 ms here), as on an empty queue: it does not spin.
    /// claim() calls are counted by PostgreSQL (track_functions); the bound is an upper one, which
    /// a loaded machine only lowers, and a spinning loop would exceed it a hundredfold.
    @Test func pausedEventsDoNotMakeTheClaimLoopSpin() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.session.execute(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET track_functions = ''pl''', current_database()); END $$")
            let board = PauseBoard(session: h.session, actor: "alice")
            let m1 = try PauseScope(merchantID: "m1")
            try await board.pause(m1, reason: "merchant asked")
            var ids: [Int64] = []
            for n in 1...10 { ids.append(try await h.insert("evaluate", order: "o-\(n)", payload: h.approvedCITEvaluate(order: "o-\(n)"))) }
            let started = ContinuousClock.now
            try await h.runWorker {
                // Long enough for many poll intervals; the events stay untouched all along.
                try await Task.sleep(for: .seconds(1.5))
                for id in ids { try await expectUntouched(h, id) }
                try await board.resume(m1, reason: nil)
                try await h.waitUntilSettled()
            }
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            // The worker's sessions have ended, so their counts are flushed (soon after: wait for it).
            var calls = 0
            for _ in 0..<40 where calls == 0 {
                calls = try await h.session.query(
                    "SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_user_functions WHERE schemaname = 'flexcharge' AND funcname = 'claim'"
                ).first!.decode("n", as: Int.self)
                if calls == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(calls > 0)  // the counter works
            #expect(Double(calls) <= seconds * 40 + 20, "\(calls) claims in \(seconds) s")
            let sent = evaluatesSent(h)
            #expect(sent.count == 10 && sent.values.allSatisfy { $0 == 1 }, "\(sent)")
        }
    }

    @Test func theWholeQueuePausedClaimsNothingUntilResumed() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let board = PauseBoard(session: h.session, actor: "alice")
            try await board.pause(.wholeQueue, reason: "database failover")
            let cit = try await h.insert("evaluate", order: "cit-1", payload: h.approvedCITEvaluate(order: "cit-1"))
            let mit = try await mitEvaluate(h, order: "mit-1")
            #expect(try await h.session.query(Self.claimSQL).rows.isEmpty)
            try await expectUntouched(h, cit)
            try await expectUntouched(h, mit)
            // A scope is paused once; a second pause of it is refused and names the first.
            await #expect(throws: OperatorError.self) { try await board.pause(.wholeQueue, reason: "again") }
            // Resuming another scope is refused: the whole queue stays paused.
            await #expect(throws: OperatorError.self) { try await board.resume(try PauseScope(merchantID: "m1"), reason: nil) }
            try await board.resume(.wholeQueue, reason: nil)
            try await h.runWorker { try await h.waitUntilSettled() }
            #expect(evaluatesSent(h) == ["mit-1": 1, "cit-1": 1])
        }
    }

    @Test func aPausedMerchantLeavesTheOthersFlowing() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            try await h.enrol("m2")
            try await PauseBoard(session: h.session, actor: "alice").pause(try PauseScope(merchantID: "m1"), reason: "merchant asked")
            let paused = try await h.insert("evaluate", merchant: "m1", order: "m1-1", payload: h.approvedCITEvaluate(order: "m1-1"))
            let other = try await h.insert("evaluate", merchant: "m2", order: "m2-1", payload: h.approvedCITEvaluate(order: "m2-1"))
            #expect(try await h.session.query(Self.claimSQL).rows.map { try $0.decode("id", as: Int64.self) } == [other])
            try await expectUntouched(h, paused)
        }
    }

    /// An environment is judged by the route claim() takes: with production paused, the merchant's
    /// production CIT waits while its sandbox MIT and its test CIT (routed to the sandbox) flow.
    @Test func aPausedEnvironmentHoldsOnlyEventsRoutedThere() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .production, citCallCenter: .off, mit: .sandbox)
            let board = PauseBoard(session: h.session, actor: "alice")
            let production = try PauseScope(environment: "production")
            try await board.pause(production, reason: "FlexCharge maintenance")
            try await h.runWorker {
                let live = try await h.insert("evaluate", order: "live-1", payload: h.approvedCITEvaluate(order: "live-1"))
                let mit = try await mitEvaluate(h, order: "mit-1")
                let test = try await h.session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ('evaluate', 'm1', 'test-1', 'cit', 'website', 'https://shop.example', $1::jsonb, true) RETURNING id
                    """, [PGJSON(text: h.approvedCITEvaluate(order: "test-1"))]).first!.decode("id", as: Int64.self)
                for id in [mit, test] {
                    try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [id])
                }
                try await expectUntouched(h, live)
                #expect(try await board.active().first?.pendingEvents == 1)
                try await board.resume(production, reason: "maintenance over")
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [live])
            }
            #expect(evaluatesSent(h, h.production) == ["live-1": 1])
            #expect(evaluatesSent(h) == ["mit-1": 1, "test-1": 1])
        }
    }

    /// Events skipped while MIT was off are replayed once it is on: each sent once; an evaluate
    /// that had been sent more than the idempotency window ago is requeued as a lookup only (never
    /// sent); one the operator skipped by hand is left alone; a channel still off is refused.
    @Test func replayingSkippedEventsSendsEachOnceAndKeepsTheIdempotencyWindow() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1", citWebsite: .sandbox, citCallCenter: .off, mit: .off)
            let since = try await h.session.query("SELECT now() AS now").first!.decode("now", as: Date.self)
            let fresh = try await mitEvaluate(h, order: "mit-1")
            let old = try await mitEvaluate(h, order: "mit-old")
            let transmit = try await h.insert("transmit", order: "mit-t", channel: "mit", site: nil, descriptor: "SHOES*ONLINE",
                                              payload: SamplePayloads.transmit(orderID: "mit-t", amountCents: 900, declined: false))
            let callCenter = try await h.insert("evaluate", order: "cc-1", origin: "call_center", payload: h.approvedCITEvaluate(order: "cc-1"))
            let byHand = try await h.insert("evaluate", order: "cit-1", payload: h.approvedCITEvaluate(order: "cit-1"))
            try await OperatorActions(session: h.session, actor: "alice").skip(byHand, reason: "duplicate")
            _ = try await h.session.query(Self.claimSQL)  // the off channels' events are skipped
            for id in [fresh, old, transmit, callCenter] {
                #expect(try await h.event(id).decode("state", as: String.self) == "skipped")
            }
            // As if the old one had been sent 25 h ago before its channel was switched off.
            try await h.session.execute(
                "UPDATE flexcharge.outbox SET first_claimed_at = now() - interval '25 hours' WHERE id = $1", [old])
            try await MerchantStore(session: h.session, actor: "alice").set("m1", site: nil, name: nil, switches: [.mit: .sandbox])

            let actions = OperatorActions(session: h.session, actor: "bob")
            let mitOnly = try await actions.replaySkipped(merchant: "m1", since: since, channel: "mit")
            #expect(mitOnly.requeued.map(\.0) == [fresh, old, transmit])
            #expect(mitOnly.requeued.map(\.1) == ["send", "lookup", "send"])
            #expect(mitOnly.refused.isEmpty)
            let note = try await h.attempts(old).last?.decode("error", as: String?.self)
            #expect(note?.contains("replayed as a lookup only") == true, "\(String(describing: note))")
            // The rest: the call-center event's channel is still off; the operator's skip is not replayed.
            let rest = try await actions.replaySkipped(merchant: "m1", since: since)
            #expect(rest.requeued.isEmpty)
            #expect(rest.refused.map(\.0) == [callCenter])
            #expect(try await h.event(byHand).decode("state", as: String.self) == "skipped")
            await #expect(throws: OperatorError.self) { try await actions.replaySkipped(merchant: "m1", since: since, channel: "fax") }

            try await h.runWorker { try await h.waitUntilSettled() }
            #expect(evaluatesSent(h) == ["mit-1": 1])  // never the old one
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /transmit" }.count == 1)
            #expect(try await h.event(old).decode("state", as: String.self) != "skipped")
            #expect(try await h.attempts(old).contains { try $0.decode("action", as: String.self) == "lookup" })
            #expect(!(try await h.attempts(old).contains { try $0.decode("action", as: String.self) == "send" }))
        }
    }
}
