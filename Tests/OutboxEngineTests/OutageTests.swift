import AsyncHTTPClient
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import NIOCore
@testable import OutboxEngine
import Testing
import TestSupport

/// Outages pause, they don't kill: the circuit breaker (migrations/0013) against the sandbox as a
/// real HTTP server, a real worker and PostgreSQL, with time compressed 100 times (an hour in 36 s):
/// probe every 0.3 s instead of 30 s, backoff 5 ms to 3 s instead of 0.5 s to 300 s, 12 attempts.
@Suite(.serialized) struct OutageTests {
    /// Production's timings divided by `scale`.
    static let scale = 100.0

    static func compressed(_ h: WorkerHarness, breaker: Bool = true) -> WorkerConfiguration {
        var configuration = h.configuration(concurrency: 16, maxAttempts: 12)
        configuration.retryPolicy.backoff = Backoff(base: .milliseconds(Int64(500 / scale)), cap: .milliseconds(Int64(300_000 / scale)))
        configuration.breaker = BreakerPolicy(
            failureThreshold: 5, failureWindow: .milliseconds(Int64(60_000 / scale)),
            probeInterval: .milliseconds(Int64(30_000 / scale)), probeTimeout: .seconds(2),
            refreshInterval: .milliseconds(100), enabled: breaker)
        return configuration
    }

    /// FlexCharge down for everyone: every route (token included) answers 503 or resets the connection.
    static let outage = [
        FaultRule(route: "*", kind: .resetBeforeProcessing, probability: 0.3),
        FaultRule(route: "*", kind: .status, status: 503, probability: 1),
    ]

    /// Inserts `count` events over `merchants`: transmits, CIT evaluates (approved) and MIT evaluates.
    @discardableResult
    static func insert(_ h: WorkerHarness, _ count: Int, merchants: [String], tag: String) async throws -> [Int64] {
        var ids: [Int64] = []
        for i in 0..<count {
            let merchant = merchants[i % merchants.count], order = "\(tag)-\(i)"
            switch i % 3 {
            case 0:
                ids.append(try await h.insert("transmit", merchant: merchant, order: order, payload: SamplePayloads.transmit(orderID: order, amountCents: 1000 + i, declined: false)))
            case 1:
                ids.append(try await h.insert("evaluate", merchant: merchant, order: order, payload: h.approvedCITEvaluate(order: order)))
            default:
                ids.append(try await h.insert(
                    "evaluate", merchant: merchant, order: order, channel: "mit", origin: nil,
                    payload: SamplePayloads.evaluate(orderID: order, amountCents: 2000 + i, payerEmail: "approve-\(order)@example.com", mit: true)))
            }
        }
        return ids
    }

    struct Figures: CustomStringConvertible {
        var events = 0, delivered = 0, dead = 0, pending = 0, maxAttempts = 0, totalAttempts = 0, ledgerCalls = 0
        var description: String {
            "events \(events), delivered \(delivered), dead \(dead), pending \(pending), attempts: max \(maxAttempts) per event, \(totalAttempts) in all, \(ledgerCalls) calls in the attempt ledger"
        }
    }

    static func figures(_ h: WorkerHarness, merchants: [String]) async throws -> Figures {
        let row = try await h.session.query(
            """
            SELECT count(*)::bigint AS events,
                   count(*) FILTER (WHERE state IN ('succeeded', 'awaiting_outcome'))::bigint AS delivered,
                   count(*) FILTER (WHERE state = 'dead')::bigint AS dead,
                   count(*) FILTER (WHERE state IN ('pending', 'running'))::bigint AS pending,
                   coalesce(max(attempts), 0)::bigint AS max_attempts, coalesce(sum(attempts), 0)::bigint AS total_attempts,
                   (SELECT count(*) FROM flexcharge.attempts a JOIN flexcharge.outbox o ON o.id = a.event_id
                     WHERE o.merchant_id = ANY($1::text[]) AND a.action IN ('send', 'lookup'))::bigint AS calls
              FROM flexcharge.outbox WHERE merchant_id = ANY($1::text[])
            """, [merchants]).first!
        return Figures(events: try row.decode("events"), delivered: try row.decode("delivered"), dead: try row.decode("dead"),
                       pending: try row.decode("pending"), maxAttempts: try row.decode("max_attempts"),
                       totalAttempts: try row.decode("total_attempts"), ledgerCalls: try row.decode("calls"))
    }

    static func breakerStates(_ h: WorkerHarness) async throws -> [String: String] {
        var states: [String: String] = [:]
        for row in try await h.session.query("SELECT merchant_id, environment, state FROM flexcharge.breakers").rows {
            states["\(try row.decode("merchant_id", as: String.self))/\(try row.decode("environment", as: String.self))"] = try row.decode("state")
        }
        return states
    }

    @Test func aOneHourOutageEndsWithEveryEventDeliveredAndNoneDead() async throws {
        try await WorkerHarness.with { h in
            let merchants = ["shop-a", "shop-b", "shop-c"]
            for merchant in merchants { try await h.enrol(merchant) }
            try await Self.insert(h, 90, merchants: merchants, tag: "before")
            h.sandbox.sandbox.setFaults(Self.outage)
            let outage = Duration.milliseconds(Int64(3_600_000 / Self.scale))  // one hour, compressed
            let started = ContinuousClock.now
            let during = try await h.runWorker(Self.compressed(h)) { () async throws -> Figures in
                // New events keep arriving during the outage.
                for batch in 0..<6 {
                    try await Task.sleep(for: outage / 8)
                    try await Self.insert(h, 10, merchants: merchants, tag: "during\(batch)")
                }
                try await Task.sleep(until: started + outage)
                let states = try await Self.breakerStates(h)
                #expect(merchants.allSatisfy { ["open", "half_open"].contains(states["\($0)/sandbox"]) }, "\(states)")
                let during = try await Self.figures(h, merchants: merchants)
                h.sandbox.sandbox.setFaults([])
                try await h.waitUntilSettled(timeout: .seconds(30))
                return during
            }
            let after = try await Self.figures(h, merchants: merchants)
            let requests = h.sandbox.sandbox.ledger().requests
            let duringOutage = requests.filter { $0.fault != nil }.count
            let trips: Int = try await h.session.query("SELECT coalesce(sum(trips), 0)::bigint FROM flexcharge.breakers").first!.decode(0)
            print("one-hour outage (compressed \(Int(Self.scale))x: \(outage) real): at its end \(during); after recovery \(after); \(trips) breaker openings (a failed probe counts again: about one probe per breaker per compressed 30 s), \(duringOutage) requests reached FlexCharge during the outage (probes' token requests included)")
            #expect(after.events == 150)
            #expect(after.dead == 0)
            #expect(after.delivered == 150)
            #expect(during.dead == 0)
            // Only the calls made before each breaker opened spent attempts: far from the 12 allowed.
            #expect(after.maxAttempts <= 4, "\(after)")
            #expect(try await Self.breakerStates(h).values.allSatisfy { $0 == "closed" })
            // Nothing stays marked as held.
            let held: Int = try await h.session.query("SELECT count(*)::bigint FROM flexcharge.outbox WHERE state <> 'succeeded' AND state <> 'awaiting_outcome'").first!.decode(0)
            #expect(held == 0)
        }
    }

    /// The same outage without the breaker: what 0013 fixes (every event dies within minutes).
    @Test func withoutTheBreakerAShortOutageKillsEveryEvent() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("shop-a")
            try await Self.insert(h, 30, merchants: ["shop-a"], tag: "control")
            h.sandbox.sandbox.setFaults(Self.outage)
            let started = ContinuousClock.now
            let during = try await h.runWorker(Self.compressed(h, breaker: false)) { () async throws -> Figures in
                // About 20 s here alone (18 s before lookups tried a failed read again): the backoff's, not a bound.
                try await h.waitUntilSettled(timeout: .seconds(45))
                return try await Self.figures(h, merchants: ["shop-a"])
            }
            let elapsed = ContinuousClock.now - started
            let minutes = (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * Self.scale / 60
            print("without the breaker every event was dead within \(Int(minutes.rounded())) compressed minutes of outage: \(during)")
            #expect(during.dead == 30)
            // 12 attempts, and for an event whose last call may have reached FlexCharge (a hang), up to
            // RetryPolicy.lookupsPastTheLimit lookups more before it is given up.
            let lookups = RetryPolicy().lookupsPastTheLimit
            #expect(during.maxAttempts >= 12 && during.maxAttempts <= 12 + lookups, "\(during)")
        }
    }

    /// After a long outage, evaluates that died and were first sent more than 24 h ago: the
    /// operator's retry requeues them as lookups (it used to refuse them). Found at FlexCharge: its
    /// decision is recorded. Not found: dead again with the reason. Never sent again.
    @Test func anOperatorsRetryOfAnEvaluatePastTheWindowLooksItUpAndNeverResendsIt() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let found = try await h.insert("evaluate", order: "outage-found", payload: h.approvedCITEvaluate(order: "outage-found"))
            let missing = try await h.insert("evaluate", order: "outage-missing", payload: h.approvedCITEvaluate(order: "outage-missing"))
            try await h.session.execute(
                """
                UPDATE flexcharge.outbox SET state = 'dead', attempts = 12, next_action = 'send', completed_at = now(),
                       first_claimed_at = now() - interval '25 hours', created_at = now() - interval '25 hours',
                       last_error_class = 'retryable', last_error = 'HTTP 503 (attempts exhausted)'
                 WHERE id = ANY($1::bigint[])
                """, [[found, missing]])
            let planted = h.sandbox.sandbox.plantOrder(SandboxOrderPlant(
                mid: WorkerHarness.sandboxMerchant.mid, merchantOrderId: "outage-found", amountCents: 1500, status: 7,
                decision: "APPROVED", charged: true))
            let result = try await OperatorActions(session: h.session, actor: "ops").retryDead(merchant: "m1", since: nil)
            #expect(Set(result.requeued) == [found, missing])
            #expect(result.refused.isEmpty)
            for id in [found, missing] {
                let row = try await h.event(id)
                #expect(try row.decode("next_action", as: String.self) == "lookup")
                #expect(try row.decode("attempts", as: Int.self) == 0)
            }
            try await h.runWorker { try await h.waitUntilSettled() }

            let resolved = try await h.event(found)
            #expect(try resolved.decode("state", as: String.self) == "succeeded")
            #expect(try resolved.decode("decision", as: String?.self) == "APPROVED")
            #expect(try resolved.decode("order_session_key", as: String?.self) == planted)
            let dead = try await h.event(missing)
            #expect(try dead.decode("state", as: String.self) == "dead")
            #expect(try dead.decode("last_error", as: String?.self)?.contains("idempotency window has passed") == true)
            for id in [found, missing] {
                #expect(try await h.attempts(id).map { try $0.decode("action", as: String.self) } == ["operator_retry", "lookup"])
            }
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" }.isEmpty)
        }
    }

    /// The real worker process, its breaker set through FLEXCHARGE_BREAKER_*: an outage opens the
    /// breaker and /metrics counts it (one series per environment and state, never per merchant).
    @Test func theWorkerProcessPublishesBreakersPerStateInMetrics() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            h.sandbox.sandbox.setFaults([FaultRule(route: "*", kind: .status, status: 503, probability: 1)])
            for i in 0..<8 {
                try await h.insert("transmit", order: "metrics-\(i)", payload: SamplePayloads.transmit(orderID: "metrics-\(i)", amountCents: 900, declined: false))
            }
            let port = try freeTCPPort()
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = h.db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            environment["FLEXCHARGE_BREAKER_FAILURES"] = "3"
            environment["FLEXCHARGE_BREAKER_PROBE_SECONDS"] = "600"
            environment["FLEXCHARGE_BREAKER_REFRESH_SECONDS"] = "0.2"
            let worker = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                "worker", "--sandbox-url", h.sandbox.environment.baseURL, "--http-port", String(port), "--http-host", "127.0.0.1",
                "--poll-interval-ms", "100", "--concurrency", "2", "--backoff-base-ms", "20", "--backoff-cap-seconds", "0.2",
            ], environment: environment)
            try await h.waitUntil("SELECT EXISTS (SELECT 1 FROM flexcharge.breakers WHERE merchant_id = 'm1' AND state = 'open')")
            var series: [String] = []
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(5))
                let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                series = body.split(separator: "\n").map(String.init).filter { $0.hasPrefix("flexcharge_outbox_breakers{") }
                if series.contains(where: { $0.contains(#"state="open""#) && $0.contains(#"environment="sandbox""#) && ($0.hasSuffix(" 1") || $0.hasSuffix(" 1.0")) }) { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            worker.send(SIGTERM)
            #expect(await worker.wait().status == 0)
            #expect(series.count == 6, "\(series)")  // 2 environments x 3 states
            #expect(series.contains { $0.contains(#"state="open""#) && $0.contains(#"environment="sandbox""#) && ($0.hasSuffix(" 1") || $0.hasSuffix(" 1.0")) }, "\(series)")
            #expect(!series.contains { $0.contains("m1") })
            // Three calls failed, then the breaker held the rest: no event spent more than one attempt.
            let figures = try await Self.figures(h, merchants: ["m1"])
            #expect(figures.dead == 0 && figures.maxAttempts == 1, "\(figures)")
        }
    }

    /// A breaker left open with no event waiting still closes: the refresh loop probes it, once.
    @Test func anOpenBreakerWithNoEventsClosesByItsOwnProbe() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("quiet")
            try await h.session.execute(
                """
                INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, trips, opened_at, retry_at, last_error)
                VALUES ('quiet', 'sandbox', 'open', 5, 1, now() - interval '1 hour', now() - interval '1 second', 'send: HTTP 503')
                """)
            try await h.runWorker(Self.compressed(h)) {
                try await h.waitUntil("SELECT state = 'closed' FROM flexcharge.breakers WHERE merchant_id = 'quiet'", timeout: .seconds(10))
            }
            let probes = h.sandbox.sandbox.ledger().requests.filter { $0.route == "GET /orders" }
            #expect(probes.count == 1)
            let row = try await h.session.query("SELECT trips, closed_at IS NOT NULL AS closed FROM flexcharge.circuit_breakers WHERE merchant_id = 'quiet'").first!
            #expect(try row.decode("trips", as: Int.self) == 1)
            #expect(try row.decode("closed", as: Bool.self))
        }
    }

    /// FlexCharge hangs: each probe is cut off within its lease, so probes never overlap, and the
    /// breaker stays open.
    @Test func aHangingProbeIsCutOffWithinItsLeaseAndProbesNeverOverlap() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("hung")
            try await h.session.execute(
                """
                INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, trips, opened_at, retry_at)
                VALUES ('hung', 'sandbox', 'open', 5, 1, now(), now())
                """)
            h.sandbox.sandbox.setFaults([FaultRule(route: "GET /orders", kind: .hang, latencyMilliseconds: 20_000, probability: 1)])
            var configuration = Self.compressed(h)
            configuration.breaker.probeTimeout = .seconds(1)
            // Two workers, as in a deployment.
            var second = configuration
            second.workerID += "-b"
            try await h.runWorker(configuration) {
                try await h.runWorker(second) { try await Task.sleep(for: .seconds(4)) }
            }
            let starts = h.sandbox.sandbox.ledger().requests.filter { $0.route == "GET /orders" }.compactMap { request in
                try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(request.time)
            }.sorted()
            #expect(starts.count >= 2 && starts.count <= 6, "\(starts.count) probes")
            for (earlier, later) in zip(starts, starts.dropFirst()) {
                // A probe lasts at most 0.75 s of its 1 s lease; the next one waits for the reopen and the probe
                // interval. These are the sandbox's receipt times: under load a request can reach it some
                // 100 ms after the worker started the probe's clock (0.666 s seen in a loaded CI run), while
                // overlapping probes of the two workers would arrive milliseconds apart.
                #expect(later.timeIntervalSince(earlier) >= 0.5, "probes overlapped: \(starts)")
            }
            #expect(try await Self.breakerStates(h)["hung/sandbox"] != "closed")
        }
    }

    /// An operator's retry resets attempts to 0; a claim given back unstarted (shutdown) must not
    /// clear first_claimed_at then (OutboxStore.release reads the ledger, not the counter). The
    /// evaluate, first sent 25 h ago, must still never be re-sent: its lookup finds nothing and it
    /// goes dead.
    @Test func aRetriedEvaluateGivenBackAtShutdownIsStillNeverResentPastTheWindow() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("evaluate", order: "given-back", payload: h.approvedCITEvaluate(order: "given-back"))
            try await h.session.execute(
                """
                UPDATE flexcharge.outbox SET state = 'dead', attempts = 12, completed_at = now(),
                       first_claimed_at = now() - interval '25 hours', created_at = now() - interval '25 hours'
                 WHERE id = $1
                """, [id])
            // Its history: the calls that used up its attempts, 25 h ago.
            try await h.session.execute(
                """
                INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at, finished_at, failure_class)
                SELECT $1, n, 'send', 'w-old', 'sandbox', now() - interval '25 hours', now() - interval '25 hours', 'ambiguous'
                  FROM generate_series(1, 12) AS n
                """, [id])
            #expect(try await OperatorActions(session: h.session, actor: "ops").retry(id) == "lookup")
            let store = OutboxStore()
            let claimed = try await store.claim(on: h.session, worker: "w-stopping", total: 1, laneCaps: [1, 1, 1, 1], lease: .seconds(30))
            #expect(claimed.map(\.id) == [id])
            try await store.release([id], worker: "w-stopping", on: h.session)
            try await h.runWorker { try await h.waitUntilSettled() }
            let row = try await h.event(id)
            #expect(try row.decode("state", as: String.self) == "dead")
            #expect(try row.decode("last_error", as: String?.self)?.contains("idempotency window has passed") == true)
            #expect(h.sandbox.sandbox.ledger().requests.filter { $0.route == "POST /evaluate" }.isEmpty)
        }
    }

    /// A merchant whose CIT goes to sandbox and MIT to production, production down: the claim cannot
    /// skip the merchant (one environment is fine), so the worker gives back what the production
    /// breaker holds, without spending attempts, while CIT keeps flowing.
    @Test func aMerchantWithOneEnvironmentDownKeepsUsingTheOther() async throws {
        try await WorkerHarness.with(productionSandbox: true) { h in
            try await h.enrol("split", citWebsite: .sandbox, mit: .production)
            h.production!.sandbox.setFaults([FaultRule(route: "*", kind: .status, status: 502, probability: 1)])
            var cit: [Int64] = [], mit: [Int64] = []
            for i in 0..<20 {
                cit.append(try await h.insert("evaluate", merchant: "split", order: "cit-\(i)", payload: h.approvedCITEvaluate(order: "cit-\(i)")))
                mit.append(try await h.insert(
                    "evaluate", merchant: "split", order: "mit-\(i)", channel: "mit", origin: nil,
                    payload: SamplePayloads.evaluate(orderID: "mit-\(i)", amountCents: 2000, payerEmail: "approve-mit-\(i)@example.com", mit: true)))
            }
            try await h.runWorker(Self.compressed(h)) {
                try await h.waitUntil(
                    "SELECT count(*) = 20 FROM flexcharge.outbox WHERE id = ANY($1::bigint[]) AND state = 'succeeded'", [cit], timeout: .seconds(20))
                try await Task.sleep(for: .seconds(2))
                let states = try await Self.breakerStates(h)
                #expect(["open", "half_open"].contains(states["split/production"]), "\(states)")
                #expect(states["split/sandbox"] == nil || states["split/sandbox"] == "closed")
                let held = try await h.session.query(
                    """
                    SELECT count(*) FILTER (WHERE state = 'dead')::bigint AS dead, coalesce(max(attempts), 0)::bigint AS max_attempts,
                           count(*) FILTER (WHERE last_error_class = 'breaker')::bigint AS held
                      FROM flexcharge.outbox WHERE id = ANY($1::bigint[])
                    """, [mit]).first!
                let maxAttempts: Int = try held.decode("max_attempts")
                print("one environment down: MIT max attempts \(maxAttempts), \(try held.decode("held", as: Int.self)) held by the breaker")
                #expect(try held.decode("dead", as: Int.self) == 0)
                #expect(maxAttempts <= 2)
                h.production!.sandbox.setFaults([])
                try await h.waitUntilSettled(timeout: .seconds(20))
            }
            let done: Int = try await h.session.query(
                "SELECT count(*)::bigint FROM flexcharge.outbox WHERE id = ANY($1::bigint[]) AND state IN ('succeeded', 'awaiting_outcome')", [mit]).first!.decode(0)
            #expect(done == 20)
        }
    }

    @Test func oneMerchantsFailingCallsDoNotStopTheOthers() async throws {
        let failing = SandboxMerchant(
            mid: "44444444-4444-4444-8444-444444444444", appKey: "failing-app-key", appSecret: "failing-SECRET-value",
            tokenizationKey: "failing-tokenization-key", mitMode: .managed)
        try await WorkerHarness.with(configure: { $0.merchants.append(failing) }) { h in
            try await h.enrol("healthy")
            try await h.enrol("failing")
            let store = MerchantStore(session: h.session, actor: "test")
            try await store.setCredentials(
                "failing", environment: "sandbox", mid: failing.mid,
                secrets: MerchantSecrets(appKey: failing.appKey, appSecret: failing.appSecret, tokenizationKey: failing.tokenizationKey),
                sealer: try CredentialSealer(keyBytes: WorkerHarness.keyBytes))
            // Only the failing merchant's calls (its token request included) get 500s.
            h.sandbox.sandbox.setFaults([FaultRule(route: "*", kind: .status, status: 500, probability: 1, mid: failing.mid)])
            try await Self.insert(h, 45, merchants: ["healthy"], tag: "ok")
            try await Self.insert(h, 45, merchants: ["failing"], tag: "bad")
            try await h.runWorker(Self.compressed(h)) {
                try await h.waitUntil(
                    "SELECT count(*) = 45 FROM flexcharge.outbox WHERE merchant_id = 'healthy' AND state IN ('succeeded', 'awaiting_outcome')",
                    timeout: .seconds(20))
                try await Task.sleep(for: .seconds(3))  // a hundred compressed probe intervals
                let healthy = try await Self.figures(h, merchants: ["healthy"])
                let held = try await Self.figures(h, merchants: ["failing"])
                let states = try await Self.breakerStates(h)
                print("one merchant failing: healthy \(healthy); failing \(held); breakers \(states)")
                #expect(healthy.delivered == 45 && healthy.maxAttempts == 1)
                #expect(["open", "half_open"].contains(states["failing/sandbox"]))
                #expect(states["healthy/sandbox"] == nil || states["healthy/sandbox"] == "closed")
                #expect(held.dead == 0 && held.pending == 45)
                #expect(held.maxAttempts <= 3, "\(held)")
                // An event a worker claimed just before it saw the breaker open is given back at once: wait for it.
                try await h.waitUntil("SELECT pending_events = 45 FROM flexcharge.breakers WHERE merchant_id = 'failing'",
                                      timeout: .seconds(10))
                let row = try await h.session.query(
                    "SELECT pending_events, last_error FROM flexcharge.breakers WHERE merchant_id = 'failing'").first!
                #expect(try row.decode("pending_events", as: Int.self) == 45)
                #expect(try row.decode("last_error", as: String?.self)?.contains("500") == true)
                let reason: String? = try await h.session.query(
                    "SELECT last_error FROM flexcharge.outbox WHERE merchant_id = 'failing' AND last_error_class = 'breaker' LIMIT 1").first?.decode(0)
                #expect(reason?.contains("no attempt counted") == true)
                // A hold restarts no idempotency window: an event with a call keeps its first claim; one
                // never sent has none (its window starts when it is first sent).
                let windows = try await h.session.query(
                    """
                    SELECT count(*) FILTER (WHERE called AND first_claimed_at IS NULL)::bigint AS lost,
                           count(*) FILTER (WHERE NOT called AND first_claimed_at IS NOT NULL)::bigint AS early,
                           count(*) FILTER (WHERE called)::bigint AS called
                      FROM (SELECT o.first_claimed_at,
                                   EXISTS (SELECT 1 FROM flexcharge.attempts a WHERE a.event_id = o.id) AS called
                              FROM flexcharge.outbox o WHERE o.merchant_id = 'failing' AND o.state = 'pending') e
                    """).first!
                #expect(try windows.decode("lost", as: Int.self) == 0)
                #expect(try windows.decode("early", as: Int.self) == 0)
                #expect(try windows.decode("called", as: Int.self) > 0)

                h.sandbox.sandbox.setFaults([])
                try await h.waitUntilSettled(timeout: .seconds(20))
            }
            let recovered = try await Self.figures(h, merchants: ["failing"])
            print("failing merchant after recovery: \(recovered)")
            #expect(recovered.delivered == 45 && recovered.dead == 0)
            #expect(try await Self.breakerStates(h)["failing/sandbox"] == "closed")
        }
    }
}
