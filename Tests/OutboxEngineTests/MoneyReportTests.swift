import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Reports follow the money (migrations/0016): refunds, cancellations and chargebacks after approval
/// adjust the numbers, each adjustment names its source, and a run against the simulator ends with the
/// report equal to the simulator's ledger, to the cent.
@Suite struct MoneyReportTests {
    /// Approvals, declines, a capture, voided and cancelled orders, full, partial and refused refunds,
    /// chargebacks (one after a partial refund), a managed MIT completed by FlexCharge: worker and
    /// webhooks over loopback. The report then says what the simulator's ledger says.
    @Test func aRunWithRefundsCancelsAndChargebacksEndsWithTheReportEqualToTheLedger() async throws {
        try await WorkerHarness.with(configure: { configuration in
            configuration.merchants[0].webhookSubscriberKey = RunningIntegrationServer.webhookKey
        }) { h in
            try await h.enrolWithWebhookKey("m1")
            let server = try await RunningIntegrationServer.start(h)
            defer { Task { await server.stop() } }
            h.sandbox.sandbox.setWebhookURL(server.webhookURL + "?merchant=m1", forMid: WorkerHarness.sandboxMerchant.mid)

            let approved = [("a-1", 1500), ("a-2", 2300), ("a-3", 4100), ("a-4", 999), ("a-5", 1234), ("a-6", 7777)]
            for (order, cents) in approved { try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order, amount: cents)) }
            for order in ["d-1", "d-2"] {
                try await h.insert("evaluate", order: order, payload: SamplePayloads.evaluate(
                    orderID: order, amountCents: 1900, payerEmail: "decline-\(order)@example.com", mit: false))
            }
            for (order, cents) in [("c-1", 3300), ("c-2", 2100)] {
                try await h.insert("evaluate", order: order, payload: h.captureRequiredEvaluate(order: order, amount: cents))
            }
            for order in ["m-1", "m-2"] { try await h.insert("evaluate", order: order, channel: "mit", payload: OutcomeLookupTests.mitEvaluate(order)) }
            try await h.runWorker {
                try await h.waitUntilSettled()
                // Follow-ups, as the gateway writes them later.
                try await h.insert("refund", order: "a-1", payload: #"{"amountCents": 1500, "refundMessage": "full"}"#)
                try await h.insert("refund", order: "a-2", payload: #"{"amountCents": 300}"#)
                try await h.insert("refund", order: "a-2", payload: #"{"amountCents": 700}"#)
                try await h.insert("refund", order: "a-4", payload: #"{"amountCents": 499}"#)
                let refused = try await h.insert("refund", order: "a-5", payload: #"{"amountCents": 99999}"#)
                try await h.insert("capture", order: "c-1", payload: #"{"amountCents": 3300}"#)
                try await h.insert("cancel", order: "c-2", payload: "{}")
                try await h.insert("cancel", order: "m-1", channel: "mit", payload: "{}")
                try await h.waitUntilSettled()
                #expect(try await h.event(refused).decode("state", as: String.self) == "failed")
                // FlexCharge completes the other managed MIT order; the issuer charges back two orders.
                let key = { (order: String) async throws -> String in
                    try await h.session.query("SELECT order_session_key FROM flexcharge.outbox WHERE kind = 'evaluate' AND order_id = $1",
                                              [order]).first!.decode(0, as: String.self)
                }
                #expect(h.sandbox.sandbox.completeOrder(id: try await key("m-2")))
                #expect(h.sandbox.sandbox.trigger(event: "payment.chargeback.received", orderId: try await key("a-3")))
                #expect(h.sandbox.sandbox.trigger(event: "payment.chargeback.received", orderId: try await key("a-4")))
                // The webhooks have arrived (chargebacks and refunds recorded, every evaluate final) and
                // every delivery the simulator made was answered.
                try await h.waitUntil(
                    """
                    SELECT (SELECT count(*) FROM flexcharge.outcome_events WHERE fc_event = 'payment.chargeback.received') = 2
                       AND (SELECT count(*) FROM flexcharge.outcome_events WHERE fc_event = 'order.refunded') = 4
                       AND (SELECT count(*) FROM flexcharge.outbox WHERE state IN ('pending', 'running')
                                OR (kind = 'evaluate' AND state <> 'succeeded')) = 0
                    """, timeout: .seconds(60))
                try await Self.waitFor(timeout: .seconds(30)) {
                    h.sandbox.sandbox.ledger().webhooks.allSatisfy { $0.httpStatus == 200 }
                }
            }

            let ledger = h.sandbox.sandbox.ledger()
            let charged = ledger.charges.reduce(0) { $0 + $1.amountCents }
            let refunded = ledger.refunds.reduce(0) { $0 + $1.amountCents }
            // A chargeback takes back what was not refunded of its order.
            let chargedBackOrders = Set(ledger.webhooks.filter { $0.event == "payment.chargeback.received" }.map(\.orderSessionKey))
            let chargedBack = chargedBackOrders.reduce(0) { total, order in
                let charge = ledger.charges.first { $0.orderSessionKey == order }?.amountCents ?? 0
                return total + charge - ledger.refunds.filter { $0.orderSessionKey == order }.reduce(0) { $0 + $1.amountCents }
            }
            // What the run must have produced at the simulator (so the comparison below is not vacuous).
            #expect(ledger.charges.count == 8)  // a-1..a-6, c-1 captured, m-2 completed
            #expect(charged == 1500 + 2300 + 4100 + 999 + 1234 + 7777 + 3300 + 1200)
            #expect(refunded == 1500 + 300 + 700 + 499)
            #expect(chargedBack == 4100 + (999 - 499))

            let report = try await h.session.query(
                """
                SELECT sum(approved)::bigint AS approved, sum(approved_cents)::bigint AS approved_cents,
                       sum(refunded_cents)::bigint AS refunded_cents, sum(cancelled_cents)::bigint AS cancelled_cents,
                       sum(chargeback_cents)::bigint AS chargeback_cents, sum(net_cents)::bigint AS net_cents,
                       sum(unpriced_adjustments)::bigint AS unpriced, sum(cancelled)::bigint AS cancelled,
                       sum(declined)::bigint AS declined, sum(pending)::bigint AS pending
                  FROM flexcharge.daily_report WHERE merchant_id = 'm1'
                """).first!
            #expect(try report.decode("approved", as: Int64.self) == Int64(ledger.charges.count))
            #expect(try report.decode("approved_cents", as: Int64.self) == Int64(charged))
            #expect(try report.decode("refunded_cents", as: Int64.self) == Int64(refunded))
            #expect(try report.decode("chargeback_cents", as: Int64.self) == Int64(chargedBack))
            #expect(try report.decode("cancelled_cents", as: Int64.self) == 0)
            #expect(try report.decode("net_cents", as: Int64.self) == Int64(charged - refunded - chargedBack))
            #expect(try report.decode("unpriced", as: Int64.self) == 0)
            #expect(try report.decode("cancelled", as: Int64.self) == 2)  // c-2 voided, m-1 cancelled
            #expect(try report.decode("declined", as: Int64.self) == 2)
            #expect(try report.decode("pending", as: Int64.self) == 0)

            // Per order, to the cent.
            for charge in ledger.charges {
                let net = charge.amountCents - ledger.refunds.filter { $0.orderSessionKey == charge.orderSessionKey }.reduce(0) { $0 + $1.amountCents }
                let expected = chargedBackOrders.contains(charge.orderSessionKey) ? 0 : net
                let row = try await h.session.query("SELECT gross_cents, net_cents FROM flexcharge.order_money WHERE order_session_key = $1",
                                                    [charge.orderSessionKey]).rows
                #expect(row.count == 1, "\(charge.merchantOrderId)")
                #expect(try row.first?.decode("gross_cents", as: Int64.self) == Int64(charge.amountCents), "\(charge.merchantOrderId)")
                #expect(try row.first?.decode("net_cents", as: Int64.self) == Int64(expected), "\(charge.merchantOrderId)")
            }

            // Every adjustment names its source: a succeeded refund event of ours, or the chargeback webhook.
            let adjustments = try await h.session.query(
                """
                SELECT a.kind, a.amount_cents, a.source, r.kind AS event_kind, r.state AS event_state, r.amount_cents AS event_cents,
                       w.fc_event, w.fc_order_id, a.order_session_key
                  FROM flexcharge.money_adjustments a
                  LEFT JOIN flexcharge.outbox r ON r.id = a.source_event_id
                  LEFT JOIN flexcharge.outcome_events w ON w.id = a.source_outcome_id
                 WHERE a.merchant_id = 'm1'
                """).rows
            #expect(adjustments.count == 6)  // four refunds, two chargebacks
            for row in adjustments {
                switch try row.decode("kind", as: String.self) {
                case "refund":
                    #expect(try row.decode("source", as: String.self) == "event")
                    #expect(try row.decode("event_kind", as: String?.self) == "refund")
                    #expect(try row.decode("event_state", as: String?.self) == "succeeded")
                    #expect(try row.decode("event_cents", as: Int64?.self) == row.decode("amount_cents", as: Int64?.self))
                case "chargeback":
                    #expect(try row.decode("source", as: String.self) == "webhook")
                    #expect(try row.decode("fc_event", as: String?.self) == "payment.chargeback.received")
                    #expect(try row.decode("fc_order_id", as: String?.self) == row.decode("order_session_key", as: String.self))
                case let other:
                    Issue.record("unexpected adjustment \(other)")
                }
            }
        }
    }

    /// The rules of the money views on a planted history: a cancellation or chargeback reverses what
    /// was not refunded, once; an `order.refunded` no refund event of ours explains is listed without
    /// an amount; refused webhooks and unrescued orders adjust nothing; a succeeded capture counts as
    /// approved money (its cents); two evaluates of one FlexCharge order count once; test and live
    /// traffic have rows of their own.
    @Test func cancellationsChargebacksAndRefundsAdjustTheRescuedMoneyOnce() async throws {
        try await TestDatabase.with { db in
            let s = db.session()
            defer { Task { await s.close() } }
            try await s.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'sandbox')")
            func event(_ kind: String, _ order: String, key: String?, state: String, decision: String? = nil, cents: Int,
                       isTest: Bool = false) async throws -> Int64 {
                let payload = kind == "evaluate" ? #"{"transaction": {"amount": \#(cents), "currency": "USD"}}"# : #"{"amountCents": \#(cents)}"#
                let id: Int64 = try await s.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ($1, 'm1', $2, 'cit', 'website', 'https://a.example', $3::jsonb, $4) RETURNING id
                    """, [kind, order, PGJSON(text: payload), isTest]).first!.decode("id")
                try await s.execute(
                    """
                    UPDATE flexcharge.outbox SET state = $2, decision = $3, order_session_key = $4, environment = 'sandbox',
                           completed_at = now() WHERE id = $1
                    """,
                    [id, state, decision, key])
                return id
            }
            func webhook(_ event: String, key: String, at second: Int, refused: String? = nil) async throws -> Int64 {
                try await s.query(
                    """
                    INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, fc_event, fc_order_id, fc_timestamp,
                                                           received_at, refused_reason)
                    VALUES ('webhook', 'm1', 'sandbox', $1, $2, $3, now() + make_interval(secs => $4::float8), $5) RETURNING id
                    """, [event, key, "2026-12-01T10:00:0\(second)Z", Double(second), refused]).first!.decode("id")
            }
            // k1: 1000 approved, refund 300, then cancelled (reverses 700), then charged back (nothing more).
            try await event("evaluate", "o1", key: "k1", state: "succeeded", decision: "APPROVED", cents: 1000)
            let refund1 = try await event("refund", "o1", key: "k1", state: "succeeded", cents: 300)
            try await event("refund", "o1", key: "k1", state: "failed", cents: 900)  // refused: no adjustment
            try await webhook("order.refunded", key: "k1", at: 1)  // FlexCharge's echo of refund1: no extra adjustment
            let cancel1 = try await webhook("order.cancelled", key: "k1", at: 2)
            let chargeback1 = try await webhook("payment.chargeback.received", key: "k1", at: 3)
            // k2: 2000 approved, refunded in FlexCharge's portal (no event of ours): listed without an amount.
            try await event("evaluate", "o2", key: "k2", state: "succeeded", decision: "APPROVED", cents: 2000)
            let portal = try await webhook("order.refunded", key: "k2", at: 1)
            try await webhook("payment.chargeback.received", key: "k2", at: 2, refused: "environment mismatch")
            // k3: CAPTUREREQUIRED, captured for 2500 of 3000: counts as approved money, 2500.
            try await event("evaluate", "o3", key: "k3", state: "awaiting_outcome", decision: "CAPTUREREQUIRED", cents: 3000)
            let capture = try await event("capture", "o3", key: "k3", state: "succeeded", cents: 2500)
            // k4: a MIT order evaluated twice (one FlexCharge order), approved: 1200 once.
            try await event("evaluate", "o4", key: "k4", state: "succeeded", decision: "APPROVED", cents: 1200)
            try await event("evaluate", "o4", key: "k4", state: "succeeded", decision: "APPROVED", cents: 1200)
            // k5: declined, then cancelled and charged back (nothing was rescued: nothing to adjust).
            try await event("evaluate", "o5", key: "k5", state: "succeeded", decision: "DECLINED", cents: 800)
            try await webhook("order.cancelled", key: "k5", at: 1)
            try await webhook("payment.chargeback.received", key: "k5", at: 2)
            // k6: test traffic, approved 4400, charged back.
            try await event("evaluate", "o6", key: "k6", state: "succeeded", decision: "APPROVED", cents: 4400, isTest: true)
            try await webhook("payment.chargeback.received", key: "k6", at: 1)

            let rows = try await s.query(
                """
                SELECT order_session_key, kind, amount_cents, source, source_event_id, source_outcome_id, note
                  FROM flexcharge.money_adjustments ORDER BY order_session_key, adjusted_at, source_outcome_id
                """).rows
            let summary = try rows.map { row -> String in
                let cents = try row.decode("amount_cents", as: Int64?.self).map(String.init) ?? "?"
                let source = try row.decode("source_event_id", as: Int64?.self).map { "event \($0)" }
                    ?? row.decode("source_outcome_id", as: Int64?.self).map { "webhook \($0)" } ?? "none"
                return "\(try row.decode("order_session_key", as: String.self)) \(try row.decode("kind", as: String.self)) \(cents) \(source)"
            }
            #expect(summary == [
                "k1 refund 300 event \(refund1)", "k1 cancellation 700 webhook \(cancel1)", "k1 chargeback 0 webhook \(chargeback1)",
                "k2 refund ? webhook \(portal)", "k6 chargeback 4400 webhook \(try await s.query("SELECT max(id) FROM flexcharge.outcome_events").first!.decode(0, as: Int64.self))",
            ], "\(summary)")
            #expect(try rows[2].decode("note", as: String?.self)?.contains("already reversed") == true)
            #expect(try rows[3].decode("note", as: String?.self)?.contains("amount is not known") == true)

            let money = try await s.query(
                "SELECT order_session_key, gross_cents, net_cents FROM flexcharge.order_money ORDER BY order_session_key").rows
            #expect(try money.map { "\(try $0.decode("order_session_key", as: String.self)) \(try $0.decode("gross_cents", as: Int64.self)) \(try $0.decode("net_cents", as: Int64.self))" }
                    == ["k1 1000 0", "k2 2000 2000", "k3 2500 2500", "k4 1200 1200", "k6 4400 0"])
            let captured = try await s.query("SELECT rescued_by, capture_event_id FROM flexcharge.rescued_orders WHERE order_session_key = 'k3'").first!
            #expect(try captured.decode("rescued_by", as: String.self) == "capture")
            #expect(try captured.decode("capture_event_id", as: Int64?.self) == capture)

            let report = try await s.query(
                """
                SELECT is_test, approved, approved_cents, refunded_cents, cancelled_cents, chargeback_cents, net_cents, unpriced_adjustments
                  FROM flexcharge.daily_report WHERE merchant_id = 'm1' ORDER BY is_test
                """).rows
            #expect(report.count == 2)
            let live = report[0].values.dropFirst().map { Int64($0 ?? "") }
            let test = report[1].values.dropFirst().map { Int64($0 ?? "") }
            #expect(try report[0].decode("is_test", as: Bool.self) == false && report[1].decode("is_test", as: Bool.self) == true)
            // live: approved k1 1000, k2 2000, k3 2500, k4 1200 = 6700; refunded 300; cancelled 700; net 5700; one unpriced.
            #expect(live == [4, 6700, 300, 700, 0, 5700, 1])
            #expect(test == [1, 4400, 0, 0, 4400, 0, 0])

            // Grants (0012's header): the operator reads every money view, reconcile's worker role reads
            // the adjustments, the gateway none of them.
            for (role, view, allowed) in [
                ("flexcharge_operator", "daily_report", true), ("flexcharge_operator", "money_adjustments", true),
                ("flexcharge_operator", "order_money", true), ("flexcharge_operator", "rescued_orders", true),
                ("flexcharge_worker", "money_adjustments", true), ("flexcharge_worker", "daily_report", false),
                ("flexcharge_gateway", "money_adjustments", false), ("flexcharge_gateway", "daily_report", false),
            ] {
                try await s.execute("SET ROLE \(role)")
                let read: Bool
                do {
                    read = try await s.query("SELECT count(*) FROM flexcharge.\(view)").first?.decode(0, as: Int64.self) ?? 0 > 0
                } catch {
                    read = false
                }
                try await s.execute("RESET ROLE")
                #expect(read == allowed, "\(role) reading \(view)")
            }
        }
    }

    static func waitFor(timeout: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("timed out")
    }
}
