import AsyncHTTPClient
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import NIOCore
@testable import OutboxEngine
import Testing
import TestSupport

/// The rate limit per merchant and environment (migrations/0020, RateLimit/RateLimiter.swift) and
/// the worker's bounded metric dimensions and queue gauges.
@Suite struct RateLimitTests {
    /// The shared bucket: a burst of ceil(rate/4), then nothing until it refills; no limit grants all.
    @Test func theBucketGrantsItsBurstThenSaysHowLongToWait() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("limited")
            try await h.enrol("free")
            try await MerchantStore(session: h.session, actor: "test").set(
                "limited", site: nil, name: nil, switches: [:], rateLimit: .some(MerchantRateLimit(perSecond: 8)))
            func take(_ merchant: String, _ want: Int) async throws -> (Int, Int?, Double) {
                let row = try #require(try await h.session.query(
                    "SELECT granted, per_second, wait_seconds FROM flexcharge.take_rate_tokens($1, 'sandbox', $2)", [merchant, want]).first)
                return (try row.decode("granted"), try row.decode("per_second"), try row.decode("wait_seconds"))
            }
            // The burst, then one more right after it, in one statement: a token refills in 125 ms, which
            // two round trips on a loaded machine could take (the lateral argument orders the calls).
            let burst = try #require(try await h.session.query(
                """
                SELECT taken.granted, taken.per_second, more.granted AS more_granted, more.wait_seconds AS more_wait
                  FROM flexcharge.take_rate_tokens($1, 'sandbox', 5) taken
                 CROSS JOIN LATERAL flexcharge.take_rate_tokens($1, 'sandbox', 1 + 0 * taken.granted) more
                """, ["limited"]).first)
            let first = (try burst.decode("granted", as: Int.self), try burst.decode("per_second", as: Int?.self))
            #expect(first.0 == 2 && first.1 == 8, "burst of ceil(8/4): \(first)")
            let empty = (try burst.decode("more_granted", as: Int.self), try burst.decode("more_wait", as: Double.self))
            #expect(empty.0 == 0 && empty.1 > 0 && empty.1 <= 0.125, "\(empty)")
            // The other environment has its own bucket.
            let production = try #require(try await h.session.query(
                "SELECT granted FROM flexcharge.take_rate_tokens('limited', 'production', 5)").first).decode("granted", as: Int.self)
            #expect(production == 2)
            let free = try await take("free", 50)
            #expect(free.0 == 50 && free.1 == nil)
            // The setting is audited like any other.
            let history = try await MerchantStore(session: h.session, actor: "test").history("limited")
            #expect(history.contains { $0.field == "rate_limit" && $0.old == "none" && $0.new == "8/s" })
            #expect(try await MerchantStore(session: h.session, actor: "test").settings("limited")?.rateLimit == MerchantRateLimit(perSecond: 8))
        }
    }

    @Test func parsing() {
        #expect(MerchantRateLimit(parsing: "20/s") == MerchantRateLimit(perSecond: 20))
        #expect(MerchantRateLimit(parsing: "7") == MerchantRateLimit(perSecond: 7))
        #expect(MerchantRateLimit(parsing: "0/s") == nil && MerchantRateLimit(parsing: "fast") == nil)
    }

    /// Four workers and a backlog: the limited merchant's calls keep to 20/s across all of them
    /// (the simulator's request times), none spends an extra attempt, and an unlimited merchant's
    /// backlog drains meanwhile without waiting.
    @Test func fourWorkersTogetherKeepToTheLimitAndAnUnlimitedMerchantIsNotSlowed() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("limited")
            try await h.enrol("free")
            let rate = 20, count = 100
            try await MerchantStore(session: h.session, actor: "test").set(
                "limited", site: nil, name: nil, switches: [:], rateLimit: .some(MerchantRateLimit(perSecond: rate)))
            for i in 0..<count {
                for merchant in ["limited", "free"] {
                    let order = "\(merchant)-\(i)"
                    try await h.insert("transmit", merchant: merchant, order: order,
                                       payload: SamplePayloads.transmit(orderID: order, amountCents: 1000 + i, declined: false))
                }
            }
            var configurations = (0..<4).map { n in
                var configuration = h.configuration(concurrency: 8)
                configuration.workerID += "-\(n)"
                return configuration
            }
            configurations.shuffle()
            try await h.runWorker(configurations[0]) {
                try await h.runWorker(configurations[1]) {
                    try await h.runWorker(configurations[2]) {
                        try await h.runWorker(configurations[3]) {
                            try await h.waitUntilSettled(timeout: .seconds(60))
                        }
                    }
                }
            }
            let requests = h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /transmit" }
            func times(_ merchant: String) -> [Date] {
                requests.filter { $0.merchantOrderId?.hasPrefix("\(merchant)-") == true }.compactMap {
                    try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0.time)
                }.sorted()
            }
            let limited = times("limited"), free = times("free")
            #expect(limited.count == count && free.count == count)
            // Any 1 s window: at most 1.5 x the rate (0020's bound) as sent; the simulator sees arrival
            // times, which a loaded machine can bunch up, so the test allows 2 x (without the limit: 100).
            let busiest = Self.busiestSecond(limited)
            #expect(busiest <= rate * 2, "\(busiest) calls in one second")
            // The whole backlog took at least (count - burst) / rate, less the leases' 250 ms.
            let span = limited.last!.timeIntervalSince(limited.first!)
            #expect(span >= Double(count - 5) / Double(rate) - 0.5, "limited merchant's calls spanned \(span) s")
            // The unlimited merchant went much faster than the limit (so this test fails without it).
            let freeSpan = free.last!.timeIntervalSince(free.first!)
            #expect(freeSpan < span / 2, "free \(freeSpan) s, limited \(span) s")
            #expect(Self.busiestSecond(free) > busiest, "free \(Self.busiestSecond(free)), limited \(busiest)")
            // Held events spent no attempt: one ledger row (the send) per event, none failed.
            let figures = try #require(try await h.session.query(
                """
                SELECT count(*) FILTER (WHERE o.state = 'succeeded')::bigint AS ok, max(o.attempts)::bigint AS max_attempts,
                       (SELECT count(*) FROM flexcharge.attempts a JOIN flexcharge.outbox x ON x.id = a.event_id
                         WHERE x.merchant_id = 'limited')::bigint AS ledger
                  FROM flexcharge.outbox o WHERE o.merchant_id = 'limited'
                """).first)
            #expect(try figures.decode("ok", as: Int.self) == count)
            #expect(try figures.decode("max_attempts", as: Int.self) == 1)
            #expect(try figures.decode("ledger", as: Int.self) == count)
        }
    }

    static func busiestSecond(_ times: [Date]) -> Int {
        var busiest = 0, start = 0
        for end in times.indices {
            while times[end].timeIntervalSince(times[start]) >= 1 { start += 1 }
            busiest = max(busiest, end - start + 1)
        }
        return busiest
    }

    /// The real worker process: /metrics carries the environment on call and outcome series, the
    /// evaluate decisions, the awaiting-outcome and dead gauges and the rate limiter's tokens and
    /// waits, and never a merchant id or order id.
    @Test func theWorkerProcessPublishesTheNewSeries() async throws {
        try await WorkerHarness.with { h in
            let merchant = "metrics-merchant-7f3a"
            try await h.enrol(merchant, mit: .sandbox)
            try await MerchantStore(session: h.session, actor: "test").set(
                merchant, site: nil, name: nil, switches: [:], rateLimit: .some(MerchantRateLimit(perSecond: 2)))
            for i in 0..<6 {
                try await h.insert("evaluate", merchant: merchant, order: "order-cit-\(i)", payload: h.approvedCITEvaluate(order: "order-cit-\(i)"))
            }
            // A managed MIT evaluate is SUBMITTED: it awaits its outcome.
            try await h.insert("evaluate", merchant: merchant, order: "order-mit-0", channel: "mit", origin: nil,
                               payload: SamplePayloads.evaluate(orderID: "order-mit-0", amountCents: 2100, payerEmail: "approve-mit@example.com", mit: true))
            let dead = try await h.insert("transmit", merchant: merchant, order: "order-dead",
                                          payload: SamplePayloads.transmit(orderID: "order-dead", amountCents: 900, declined: false))
            try await h.session.execute("UPDATE flexcharge.outbox SET state = 'dead', completed_at = now() WHERE id = $1", [dead])
            let port = try freeTCPPort()
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = h.db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            let worker = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                "worker", "--sandbox-url", h.sandbox.environment.baseURL, "--http-port", String(port), "--http-host", "127.0.0.1",
                "--poll-interval-ms", "100", "--concurrency", "2",
            ], environment: environment)
            let wanted: [(String, [String])] = [
                ("flexcharge_outbox_completed_total{", [#"environment="sandbox""#]),
                ("flexcharge_outbox_call_duration_seconds_count{", [#"environment="sandbox""#]),
                ("flexcharge_outbox_evaluate_decisions_total{", [#"decision="APPROVED""#, #"environment="sandbox""#]),
                ("flexcharge_outbox_awaiting_outcome_events{", [#"lane="mit_evaluate""#]),
                ("flexcharge_outbox_dead_events{", [#"lane="transmit""#]),
                ("flexcharge_outbox_rate_limit_tokens_total{", [#"environment="sandbox""#]),
                ("flexcharge_outbox_rate_limit_waits_total{", [#"environment="sandbox""#]),
            ]
            func positive(_ line: String) -> Bool { (Double(line.split(separator: " ").last ?? "") ?? 0) > 0 }
            var body = "", missing = wanted.map(\.0)
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let response = try? await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(5)) {
                    body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                    let lines = body.split(separator: "\n").map(String.init)
                    missing = wanted.filter { prefix, labels in
                        !lines.contains { $0.hasPrefix(prefix) && labels.allSatisfy($0.contains) && positive($0) }
                    }.map(\.0)
                    if missing.isEmpty { break }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            worker.send(SIGTERM)
            #expect(await worker.wait().status == 0)
            #expect(missing.isEmpty, "missing: \(missing)")
            #expect(!body.contains(merchant) && !body.contains("order-"), "an unbounded label leaked into /metrics")
        }
    }
}
