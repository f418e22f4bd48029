import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Never evaluated twice under two keys, never re-sent past the idempotency window, per-order
/// order, and the CIT lane ahead of a transmit backlog.
@Suite struct MoneySafetyTests {
    @Test func anAmbiguousEvaluateIsLookedUpNotSentAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge processes the evaluate (and charges), then the connection drops.
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /evaluate", kind: .resetAfterProcessing, count: 1)])
            let id = try await h.insert("evaluate", order: "o1", payload: h.approvedCITEvaluate(order: "o1"))
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("decision", as: String?.self) == "APPROVED")
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions == ["send", "lookup"])
            let ledger = h.sandbox.sandbox.ledger()
            let evaluates = ledger.requests.filter { $0.route == "POST /evaluate" && $0.merchantOrderId == "o1" }
            #expect(evaluates.count == 1)
            #expect(ledger.chargeCount(merchantOrderId: "o1") == 1)
            #expect(try row.decode("order_session_key", as: String?.self) == ledger.charges.first?.orderSessionKey)
        }
    }

    @Test func pastTheIdempotencyWindowAnEvaluateIsLookedUpNeverSentAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // Two evaluates whose first attempt failed retryably 25 hours ago (FlexCharge's key window is 24 h):
            // FlexCharge has an order for the first (planted in the sandbox), none for the second.
            let found = try await h.insert("evaluate", order: "late-found", payload: h.approvedCITEvaluate(order: "late-found"))
            let missing = try await h.insert("evaluate", order: "late-missing", payload: h.approvedCITEvaluate(order: "late-missing"))
            try await h.session.execute(
                """
                UPDATE flexcharge.outbox SET attempts = 1, first_claimed_at = now() - interval '25 hours',
                       created_at = now() - interval '25 hours', last_error_class = 'retryable'
                 WHERE id = ANY($1::bigint[])
                """, [[found, missing]])
            let planted = h.sandbox.sandbox.plantOrder(SandboxOrderPlant(
                mid: WorkerHarness.sandboxMerchant.mid, merchantOrderId: "late-found", amountCents: 1500, status: 7, decision: "APPROVED", charged: true))
            try await h.runWorker { try await h.waitUntilSettled() }

            let resolved = try await h.event(found)
            #expect(try resolved.decode("state", as: String.self) == "succeeded")
            #expect(try resolved.decode("decision", as: String?.self) == "APPROVED")
            #expect(try resolved.decode("order_session_key", as: String?.self) == planted)
            let dead = try await h.event(missing)
            #expect(try dead.decode("state", as: String.self) == "dead")
            #expect(try dead.decode("last_error", as: String?.self)?.contains("idempotency window has passed") == true)
            for id in [found, missing] {
                #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["lookup"])
            }
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" }.isEmpty)
        }
    }

    @Test func eventsOfOneOrderRunInInsertOrderWithoutBlockingOtherOrders() async throws {
        try await WorkerHarness.with(configure: { $0.latency = SandboxLatency(fixedMilliseconds: 30) }) { h in
            try await h.enrol("m1")
            let first = try await h.insert("transmit", order: "A", payload: SamplePayloads.transmit(orderID: "A", amountCents: 1500, declined: true))
            let second = try await h.insert("evaluate", order: "A", payload: h.approvedCITEvaluate(order: "A"))
            let third = try await h.insert("refund", order: "A", payload: #"{"amountCents": 500, "refundMessage": "customer request"}"#)
            let other = try await h.insert("evaluate", order: "B", payload: h.approvedCITEvaluate(order: "B"))
            try await h.runWorker { try await h.waitUntilSettled() }

            // Since 0014 an order's transmit (a data feed) holds back only the order's later
            // transmits: the evaluate does not wait for it. It is still sent, once.
            #expect(try await h.attempts(first).count == 1)
            #expect(try (await h.event(first)).decode("state", as: String.self) == "succeeded")
            var previousFinish = Date.distantPast
            for id in [second, third] {
                let attempts = try await h.attempts(id)
                #expect(attempts.count == 1)
                let event = try await h.event(id)
                let lastError = try event.decode("last_error", as: String?.self) ?? ""
                #expect(try event.decode("state", as: String.self) == "succeeded", "\(lastError)")
                let started = try attempts[0].decode("started_at", as: Date.self)
                #expect(started >= previousFinish, "event \(id) started before its predecessor finished")
                previousFinish = try attempts[0].decode("finished_at", as: Date.self)
            }
            // The refund acted on the order the evaluate created.
            let evaluateKey = try (await h.event(second)).decode("order_session_key", as: String?.self)
            #expect(try (await h.event(third)).decode("order_session_key", as: String?.self) == evaluateKey)
            #expect(h.sandbox.sandbox.ledger().refunds.map(\.amountCents) == [500])
            // Order B did not wait for order A's chain.
            let otherStart = try (await h.attempts(other))[0].decode("started_at", as: Date.self)
            let thirdStart = try (await h.attempts(third))[0].decode("started_at", as: Date.self)
            #expect(otherStart < thirdStart)
        }
    }

    @Test func aCITEvaluateOvertakesATransmitBacklog() async throws {
        try await WorkerHarness.with(configure: { $0.latency = SandboxLatency(fixedMilliseconds: 5) }) { h in
            try await h.enrol("m1")
            let transmit = SamplePayloads.transmit(orderID: "bulk", amountCents: 1500, declined: false)
            try await h.session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                SELECT 'transmit', 'm1', 'bulk-' || g, 'cit', 'website', 'https://shop.example', $1::jsonb
                  FROM generate_series(1, 5000) AS g
                """, [PGJSON(text: transmit)])
            let latency = try await h.runWorker(h.configuration(concurrency: 16)) { () async throws -> Double in
                try await h.waitUntil("SELECT count(*) > 200 FROM flexcharge.outbox WHERE state = 'succeeded'")
                let inserted = Date()
                let id = try await h.insert("evaluate", order: "shopper-waiting", payload: h.approvedCITEvaluate(order: "shopper-waiting"))
                try await h.waitUntil("SELECT state = 'succeeded' FROM flexcharge.outbox WHERE id = $1", [id])
                let pending = try await h.session.query(
                    "SELECT count(*) AS n FROM flexcharge.outbox WHERE kind = 'transmit' AND state = 'pending'").first!.decode("n", as: Int.self)
                #expect(pending > 2000, "the CIT evaluate waited for the backlog: only \(pending) transmits left")
                let started = try (await h.attempts(id))[0].decode("started_at", as: Date.self)
                return started.timeIntervalSince(inserted)
            }
            // Generous bound for a loaded 2-core CI machine; the benchmark measures the real figure.
            #expect(latency < 1.0, "insert to request start took \(latency) s")
        }
    }
}
