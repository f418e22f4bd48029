import FlexChargeAPI
import Foundation
import LibPQ
@testable import OutboxEngine
import Testing
import TestSupport

/// The real worker (in-process, real PostgreSQL) against ``FuzzFlexChargeServer``: every kind of event, each
/// call answered at random and often malformed. Nothing may crash, and every event must end in a valid state
/// with a readable reason, or still wait (pending, awaiting its outcome) with one.
///
/// The seed is printed (`FUZZ_SEED` replays the same replies; with 16 calls in flight their order varies).
@Suite struct WorkerFuzzTests {
    @Test func everyEventEndsValidUnderMalformedAnswers() async throws {
        let seed = ResponseFuzzTests.seed
        print("WorkerFuzzTests: seed \(seed) (replay with FUZZ_SEED=\(seed))")
        let server = try await FuzzFlexChargeServer.start(seed: seed)
        defer { Task { await server.stop() } }
        try await WorkerHarness.with { h in
            let merchants = ["m1", "m2", "m3"]
            for merchant in merchants { try await h.enrol(merchant) }
            func merchant(_ index: Int) -> String { merchants[index % merchants.count] }
            var ids: [Int64] = []
            for index in 0..<60 {
                ids.append(try await h.insert("transmit", merchant: merchant(index), order: "t-\(index)",
                                              payload: SamplePayloads.transmit(orderID: "t-\(index)", amountCents: 100 + index, declined: index % 2 == 0)))
                ids.append(try await h.insert("evaluate", merchant: merchant(index), order: "e-\(index)", payload: h.approvedCITEvaluate(order: "e-\(index)")))
            }
            for index in 0..<40 {
                ids.append(try await h.insert("evaluate", merchant: merchant(index), order: "mit-\(index)", channel: "mit", payload: SamplePayloads.evaluate(
                    orderID: "mit-\(index)", amountCents: 900, payerEmail: "approve-mit-\(index)@example.com", mit: true)))
                // An order's evaluate, then its cancel or refund.
                ids.append(try await h.insert("evaluate", merchant: merchant(index), order: "f-\(index)", payload: h.approvedCITEvaluate(order: "f-\(index)")))
                ids.append(try await h.insert(index % 2 == 0 ? "cancel" : "refund", merchant: merchant(index), order: "f-\(index)",
                                              payload: index % 2 == 0 ? "{}" : #"{"amountCents": \#(100 + index), "refundMessage": "fuzz"}"#))
                ids.append(try await h.insert("refund", merchant: merchant(index), order: "r-\(index)",
                                              payload: #"{"amountCents": 505, "orderSessionKey": "osk-\#(index)"}"#))
            }
            for index in 0..<30 {
                ids.append(try await h.insert("external_cancel", merchant: merchant(index), order: "x-\(index)", payload: "{}"))
            }
            var configuration = h.configuration(concurrency: 16, maxAttempts: 3)
            let fuzz = FlexChargeEnvironment(name: .sandbox, baseURL: server.baseURL)
            configuration.environments = [.sandbox: fuzz, .production: FlexChargeEnvironment(name: .production, baseURL: server.baseURL)]
            configuration.retryPolicy.backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(50))
            configuration.client = FlexChargeClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(1))
            configuration.outcomePolling = OutcomePolling(firstDelay: .zero, base: .milliseconds(200), cap: .milliseconds(500),
                                                          batchSize: 16, lease: .seconds(5), interval: .milliseconds(200))
            // The circuit breakers stay on (they are part of what answers do to the worker), probing quickly;
            // events they hold wait with their reason in flexcharge.breakers.
            configuration.breaker = BreakerPolicy(failureThreshold: 10, failureWindow: .seconds(60), probeInterval: .seconds(1),
                                                  probeTimeout: .seconds(2), refreshInterval: .milliseconds(200))
            let started = ContinuousClock.now
            try await h.runWorker(configuration) {
                // Done when nothing runs and nothing that may run is due in the next 2 s (long Retry-After waits,
                // events queued behind them and events of a merchant whose breaker is open stay pending, with
                // their reason).
                try await h.waitUntil(
                    """
                    SELECT count(*) = 0 FROM flexcharge.outbox o
                     WHERE o.state = 'running'
                        OR (o.state = 'pending' AND o.next_attempt_at < now() + interval '2 seconds'
                            AND NOT EXISTS (SELECT 1 FROM flexcharge.outbox e
                                             WHERE e.merchant_id = o.merchant_id AND e.order_id = o.order_id
                                               AND e.id < o.id AND e.state IN ('pending', 'running'))
                            AND NOT EXISTS (SELECT 1 FROM flexcharge.circuit_breakers b
                                             WHERE b.merchant_id = o.merchant_id AND b.state <> 'closed'))
                    """, timeout: .seconds(45))
            }
            let elapsed = ContinuousClock.now - started
            let rows = try await h.session.query(
                """
                SELECT o.id, o.kind, o.state, o.attempts, o.last_error, o.last_error_class, o.last_http_status, o.decision,
                       o.order_session_key, o.transaction_key, extract(epoch FROM o.next_attempt_at - now())::float8 AS wait_s,
                       EXISTS (SELECT 1 FROM flexcharge.outbox e WHERE e.merchant_id = o.merchant_id AND e.order_id = o.order_id
                                 AND e.id < o.id AND e.state IN ('pending', 'running', 'awaiting_outcome')) AS queued,
                       EXISTS (SELECT 1 FROM flexcharge.circuit_breakers b
                                WHERE b.merchant_id = o.merchant_id AND b.state <> 'closed') AS held
                  FROM flexcharge.outbox o ORDER BY o.id
                """).rows
            #expect(rows.count == ids.count)
            var problems: [String] = []
            var states: [String: Int] = [:]
            let valid: Set<String> = ["succeeded", "awaiting_outcome", "failed", "skipped", "dead", "pending"]
            for row in rows {
                let id: Int64 = try row.decode("id")
                let kind: String = try row.decode("kind")
                let state: String = try row.decode("state")
                let attempts: Int32 = try row.decode("attempts")
                let error = try row.decode("last_error", as: String?.self)
                states[state, default: 0] += 1
                let label = "event \(id) (\(kind), \(state), \(attempts) attempts)"
                if !valid.contains(state) { problems.append("\(label): state \(state)") }
                if ["failed", "dead"].contains(state), (error ?? "").isEmpty { problems.append("\(label): no reason") }
                if state == "pending", attempts > 0, (error ?? "").isEmpty { problems.append("\(label): retrying without a reason") }
                if state == "pending", attempts == 0, try row.decode("queued", as: Bool.self) == false,
                   try row.decode("held", as: Bool.self) == false, try row.decode("last_error_class", as: String?.self) != "breaker" {
                    problems.append("\(label): never tried, nothing before it")
                }
                if let error {
                    if error.count > 2000 { problems.append("\(label): reason of \(error.count) characters") }
                    if error.unicodeScalars.contains(where: ResponseFuzzTests.isControl) {
                        problems.append("\(label): control character in \(SafeText.forLog(error))")
                    }
                }
                if let wait = try row.decode("wait_s", as: Double?.self), state == "pending",
                   wait > Double(RetryAfter.maximum.components.seconds) + 60 {
                    problems.append("\(label): next attempt in \(Int(wait)) s, past the Retry-After cap")
                }
                for column in ["order_session_key", "transaction_key"] {
                    if let value = try row.decode(column, as: String?.self), !SafeText.isIdentifier(value) {
                        problems.append("\(label): \(column) \(SafeText.forLog(value)) stored")
                    }
                }
                if let decision = try row.decode("decision", as: String?.self),
                   decision.count > 65 || decision.unicodeScalars.contains(where: ResponseFuzzTests.isControl) {
                    problems.append("\(label): decision \(SafeText.forLog(decision)) stored")
                }
            }
            let ledger = try await h.session.query(
                """
                SELECT count(*) AS calls,
                       count(*) FILTER (WHERE length(error) > 2000 OR error ~ '[[:cntrl:]]') AS unbounded,
                       count(*) FILTER (WHERE error LIKE '%capped at%') AS capped
                  FROM flexcharge.attempts
                """).first
            let calls = try ledger?.decode("calls", as: Int64.self) ?? 0
            let unbounded = try ledger?.decode("unbounded", as: Int64.self) ?? 0
            let capped = try ledger?.decode("capped", as: Int64.self) ?? 0
            let breakers = try await h.session.query("SELECT coalesce(sum(trips), 0)::bigint AS trips FROM flexcharge.circuit_breakers")
                .first?.decode("trips", as: Int64.self) ?? 0
            print("WorkerFuzzTests: \(breakers) breaker trips, \(rows.count) events, \(calls) attempts (\(capped) with a capped Retry-After), \(server.replyCount) replies in \(elapsed); states \(states.sorted { $0.key < $1.key })")
            // An evaluate answered without FlexCharge's order id could never be looked up: refused as malformed
            // by the client (ambiguous, resolved by the gateway's order id), so none may wait for its outcome.
            let unresolvable = try await h.session.query(
                "SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'awaiting_outcome' AND order_session_key IS NULL")
                .first?.decode("n", as: Int64.self) ?? 0
            #expect(unresolvable == 0, "evaluates awaiting their outcome without an order id")
            #expect(unbounded == 0, "attempt-ledger errors with control characters or over 2000 characters")
            #expect(problems.isEmpty, "seed \(seed):\n\(problems.prefix(30).joined(separator: "\n"))")
            #expect(calls >= Int64(rows.count) / 2, "the worker should have called the fake FlexCharge")
        }
    }
}
