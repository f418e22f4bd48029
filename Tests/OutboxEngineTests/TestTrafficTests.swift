import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// Issue 16, "test traffic beside live traffic": an event with `is_test` goes to FlexCharge's
/// sandbox with the merchant's sandbox credentials whatever its switch (migrations/0014).
@Suite struct TestTrafficTests {
    @Test func aMerchantLiveOnCITSendsItsTestEventsToTheSandbox() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .production, citCallCenter: .off, mit: .off)
            let live = try await h.insert("evaluate", order: "live-1", payload: h.approvedCITEvaluate(order: "live-1"))
            func insertTest(_ order: String, origin: String) async throws -> Int64 {
                try await h.session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ('evaluate', 'm1', $1, 'cit', $2, 'https://shop.example', $3::jsonb, true) RETURNING id
                    """, [order, origin, PGJSON(text: h.approvedCITEvaluate(order: order))]).first!.decode("id")
            }
            let test = try await insertTest("test-1", origin: "website")
            let testOff = try await insertTest("test-2", origin: "call_center")  // its live channel is off
            try await h.runWorker { try await h.waitUntilSettled() }

            #expect(try (await h.event(live)).decode("environment", as: String?.self) == "production")
            #expect(try (await h.event(test)).decode("environment", as: String?.self) == "sandbox")
            #expect(try (await h.event(testOff)).decode("environment", as: String?.self) == "sandbox")
            #expect(try ["succeeded", "awaiting_outcome"].contains((await h.event(test)).decode("state", as: String.self)))
            let sandboxOrders = Set(h.sandbox.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            let productionOrders = Set(h.production!.sandbox.ledger().requests.compactMap(\.merchantOrderId))
            #expect(sandboxOrders == ["test-1", "test-2"])
            #expect(productionOrders == ["live-1"])
        }
    }

    /// A held sandbox breaker holds the merchant's test events (given back, no attempt, nothing
    /// sent) while its live production traffic flows.
    @Test func aHeldSandboxBreakerHoldsTestEventsWhileLiveTrafficFlows() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .production, citCallCenter: .off, mit: .off)
            try await h.session.execute(
                """
                INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, trips, opened_at, retry_at)
                VALUES ('m1', 'sandbox', 'open', 5, 1, now(), now() + interval '1 hour')
                """)
            try await h.runWorker {
                let live = try await h.insert("evaluate", order: "live-1", payload: h.approvedCITEvaluate(order: "live-1"))
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [live])
                let test = try await h.session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                    VALUES ('evaluate', 'm1', 'test-1', 'cit', 'website', 'https://shop.example', $1::jsonb, true) RETURNING id
                    """, [PGJSON(text: h.approvedCITEvaluate(order: "test-1"))]).first!.decode("id", as: Int64.self)
                let later = try await h.insert("evaluate", order: "live-2", payload: h.approvedCITEvaluate(order: "live-2"))
                try await h.waitUntil("SELECT state IN ('succeeded', 'awaiting_outcome') FROM flexcharge.outbox WHERE id = $1", [later])
                // Claimed (its merchant's production is not held) and given back by the breaker.
                try await h.waitUntil(
                    "SELECT state = 'pending' AND attempts = 0 AND last_error_class = 'breaker' FROM flexcharge.outbox WHERE id = $1",
                    [test])
                #expect(try await h.attempts(test).isEmpty)
            }
            #expect(h.sandbox.sandbox.ledger().requests.compactMap(\.merchantOrderId).isEmpty)
            #expect(Set(h.production!.sandbox.ledger().requests.compactMap(\.merchantOrderId)) == ["live-1", "live-2"])
        }
    }

    /// The tokenizer routes like the event it is for: a test order's card is vaulted with the
    /// merchant's sandbox key, a live order's where the switch says.
    @Test func aTestOrdersCardIsTokenizedInTheSandbox() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("m1", citWebsite: .production, citCallCenter: .off, mit: .off)
            let sandboxClient = FlexChargeClient(environment: h.sandbox.environment, logger: WorkerHarness.silent)
            let productionClient = FlexChargeClient(environment: h.production!.environment, logger: WorkerHarness.silent)
            defer { Task { try? await sandboxClient.shutdown(); try? await productionClient.shutdown() } }
            let tokenizer = CardTokenizer(session: h.session, sealer: try CredentialSealer(keyBytes: WorkerHarness.keyBytes),
                                          clients: ["sandbox": sandboxClient, "production": productionClient], logger: WorkerHarness.silent)
            let card = CardToTokenize(firstName: "Joe", lastName: "Jones", number: "4242424242424242", month: "03", year: "2030")
            func tokenize(origin: String, isTest: Bool) async throws -> String {
                try await tokenizer.tokenize(card, merchantID: "m1", channel: "cit", origin: origin, site: "https://shop.example",
                                             isTest: isTest).environment
            }
            #expect(try await tokenize(origin: "website", isTest: false) == "production")
            #expect(try await tokenize(origin: "website", isTest: true) == "sandbox")
            #expect(try await tokenize(origin: "call_center", isTest: true) == "sandbox")  // its live channel is off
            await #expect(throws: TokenizeError.self) { try await tokenize(origin: "call_center", isTest: false) }
        }
    }
}
