import FlexChargeSandbox
import Foundation
@testable import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The worker against a real PostgreSQL and the sandbox over loopback.
@Suite struct WorkerDeliveryTests {
    @Test func deliversTransmitsAndEvaluatesAndRecordsEveryOutcome() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let transmit = try await h.insert("transmit", order: "o1", payload: SamplePayloads.transmit(orderID: "o1", amountCents: 1500, declined: true))
            let approved = try await h.insert("evaluate", order: "o1", payload: h.approvedCITEvaluate(order: "o1"))
            let declined = try await h.insert("evaluate", order: "o2", payload: SamplePayloads.evaluate(
                orderID: "o2", amountCents: 1501, payerEmail: "decline@example.com", mit: false))
            let mit = try await h.insert("evaluate", order: "o3", channel: "mit", payload: SamplePayloads.evaluate(
                orderID: "o3", amountCents: 999, payerEmail: "approve@example.com", mit: true))
            try await h.runWorker { try await h.waitUntilSettled() }

            let t = try await h.event(transmit)
            #expect(try t.decode("state", as: String.self) == "succeeded")
            #expect(try t.decode("transaction_key", as: String?.self) != nil)
            let a = try await h.event(approved)
            #expect(try a.decode("state", as: String.self) == "succeeded")
            #expect(try a.decode("decision", as: String?.self) == "APPROVED")
            let orderSessionKey = try a.decode("order_session_key", as: String?.self)
            #expect(orderSessionKey != nil)
            #expect(try (await h.event(declined)).decode("decision", as: String?.self) == "DECLINED")
            let m = try await h.event(mit)
            #expect(try m.decode("state", as: String.self) == "awaiting_outcome")
            #expect(try m.decode("decision", as: String?.self) == "SUBMITTED")
            #expect(try m.decode("environment", as: String?.self) == "sandbox")

            // One attempt each, recorded with status and latency.
            for id in [transmit, approved, declined, mit] {
                let rows = try await h.attempts(id)
                #expect(rows.count == 1)
                #expect(try rows[0].decode("http_status", as: Int?.self) == 200)
                #expect(try rows[0].decode("failure_class", as: String?.self) == nil)
                #expect(try rows[0].decode("latency_ms", as: Double?.self) != nil)
            }
            // FlexCharge saw the event's own idempotency key and one charge for the approved order.
            let key: String = try a.decode("idempotency_key")
            let ledger = h.sandbox.sandbox.ledger()
            #expect(ledger.requests.contains { $0.route == "POST /evaluate" && $0.idempotencyKey == key && $0.orderSessionKey == orderSessionKey })
            #expect(ledger.chargeCount(merchantOrderId: "o1") == 1)
        }
    }

    @Test func aChannelThatIsOffIsSkippedAndNeverSent() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1", citWebsite: .sandbox, citCallCenter: .off, mit: .off)
            let website = try await h.insert("evaluate", order: "web-1", payload: h.approvedCITEvaluate(order: "web-1"))
            let phone = try await h.insert("evaluate", order: "phone-1", origin: "call_center", payload: h.approvedCITEvaluate(order: "phone-1"))
            let mit = try await h.insert("transmit", order: "mit-1", channel: "mit", payload: SamplePayloads.transmit(orderID: "mit-1", amountCents: 500, declined: false))
            let stranger = try await h.insert("transmit", merchant: "not-enrolled", order: "x-1", payload: SamplePayloads.transmit(orderID: "x-1", amountCents: 500, declined: false))
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try (await h.event(website)).decode("state", as: String.self) == "succeeded")
            for id in [phone, mit, stranger] {
                let row = try await h.event(id)
                #expect(try row.decode("state", as: String.self) == "skipped")
                #expect(try row.decode("attempts", as: Int.self) == 0)
                #expect(try await h.attempts(id).isEmpty)
            }
            #expect(try (await h.event(phone)).decode("last_error", as: String?.self)?.contains("cit call_center is off") == true)
            let sent = Set(h.sandbox.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            #expect(sent == ["web-1"])
        }
    }

    @Test func eachChannelGoesToItsOwnEnvironment() async throws {
        // MIT live in production while CIT is still in sandbox.
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .sandbox, citCallCenter: .off, mit: .production)
            let cit = try await h.insert("evaluate", order: "cit-1", payload: h.approvedCITEvaluate(order: "cit-1"))
            let mit = try await h.insert("evaluate", order: "mit-1", channel: "mit", payload: SamplePayloads.evaluate(
                orderID: "mit-1", amountCents: 1200, payerEmail: "approve@example.com", mit: true))
            // A site override: this site's CIT goes to production too.
            try await MerchantStore(session: h.session, actor: "test").set(
                "m1", site: "https://vip.example", name: nil, switches: [.citWebsite: .production])
            let vip = try await h.insert("evaluate", order: "vip-1", site: "https://vip.example", payload: h.approvedCITEvaluate(order: "vip-1"))
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try (await h.event(cit)).decode("environment", as: String?.self) == "sandbox")
            #expect(try (await h.event(mit)).decode("environment", as: String?.self) == "production")
            #expect(try (await h.event(vip)).decode("environment", as: String?.self) == "production")
            let sandboxOrders = Set(h.sandbox.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            let productionOrders = Set(h.production!.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            #expect(sandboxOrders == ["cit-1"])
            #expect(productionOrders == ["mit-1", "vip-1"])
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .rateLimit, retryAfterSeconds: 2, count: 1)])
            let id = try await h.insert("transmit", order: "o1", payload: SamplePayloads.transmit(orderID: "o1", amountCents: 700, declined: false))
            try await h.runWorker { try await h.waitUntilSettled() }

            let rows = try await h.attempts(id)
            #expect(rows.count == 2)
            #expect(try rows[0].decode("http_status", as: Int?.self) == 429)
            #expect(try rows[0].decode("failure_class", as: String?.self) == "retryable")
            let gap = try rows[1].decode("started_at", as: Date.self).timeIntervalSince(try rows[0].decode("finished_at", as: Date.self))
            #expect(gap >= 1.9, "the retry came \(gap) s after the 429 asked for 2 s")
            #expect(try (await h.event(id)).decode("state", as: String.self) == "succeeded")
        }
    }

    @Test func aPoisonEventEndsDeadAfterMaxAttempts() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .status, status: 503, probability: 1)])
            let id = try await h.insert("transmit", order: "o1", payload: SamplePayloads.transmit(orderID: "o1", amountCents: 700, declined: false))
            try await h.runWorker(h.configuration(maxAttempts: 3)) { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try row.decode("attempts", as: Int.self) == 3)
            #expect(try row.decode("last_error", as: String?.self)?.contains("attempts exhausted") == true)
            let attempts = try await h.attempts(id)
            #expect(attempts.count == 3)
            #expect(try attempts.allSatisfy { try $0.decode("http_status", as: Int?.self) == 503 })
        }
    }

    @Test func aRefusedEventFailsWithFlexChargesFieldErrors() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // Passes our insert checks, but FlexCharge requires billingInformation on /evaluate.
            let bad = try await h.insert("evaluate", order: "bad-1", payload: #"{"isDeclined": true, "transaction": {"amount": 1500, "id": "t", "responseCode": "05", "responseCodeSource": "NMI", "avsResultCode": "M", "cvvResultCode": "M", "cavvResultCode": "NA"}, "payer": {"email": "ü@example.com"}, "paymentMethod": {"token": true, "cardNumber": "tok_1"}}"#)
            let good = try await h.insert("evaluate", order: "good-1", payload: h.approvedCITEvaluate(order: "good-1"))
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(bad)
            #expect(try row.decode("state", as: String.self) == "failed")
            #expect(try row.decode("last_http_status", as: Int?.self) == 400)
            let fieldErrors = try row.decode("field_errors", as: PGJSON?.self)?.text ?? ""
            #expect(fieldErrors.contains("BillingInformation"))
            #expect(try (await h.event(good)).decode("state", as: String.self) == "succeeded")
        }
    }

    @Test func anExpiredLeaseIsReclaimedAndCountsAsAnAttempt() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("transmit", order: "o1", payload: SamplePayloads.transmit(orderID: "o1", amountCents: 700, declined: false))
            // A worker claims it and dies: its lease runs out.
            let claimed = try await h.session.query(
                "SELECT id FROM flexcharge.claim('ghost-worker', 10, ARRAY[10,10,10,10], interval '300 milliseconds')")
            #expect(claimed.rows.count == 1)
            try await Task.sleep(for: .milliseconds(400))
            try await h.runWorker { try await h.waitUntilSettled() }

            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "succeeded")
            #expect(try row.decode("attempts", as: Int.self) == 2)
            let actions = try await h.attempts(id).map { try $0.decode("action", as: String.self) }
            #expect(actions == ["lease_expired", "send"])
        }
    }

    @Test func anEventThatKeepsKillingItsWorkerEndsDead() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("transmit", order: "o1", payload: SamplePayloads.transmit(orderID: "o1", amountCents: 700, declined: false))
            for _ in 0..<3 {
                _ = try await h.session.query("SELECT id FROM flexcharge.claim('doomed', 10, ARRAY[10,10,10,10], interval '1 millisecond')")
                try await Task.sleep(for: .milliseconds(5))
                _ = try await OutboxStore().rescueExpiredLeases(policy: RetryPolicy(maxAttempts: 3), on: h.session)
            }
            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try await h.attempts(id).count == 3)
        }
    }
}
