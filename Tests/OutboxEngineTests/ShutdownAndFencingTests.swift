import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
@testable import OutboxEngine
import ServiceLifecycle
import Testing
import TestSupport

/// The worker's promises when the platform misbehaves: it exits within its grace period (plus a few
/// seconds) whatever FlexCharge and PostgreSQL do, and an outcome that waited for the database is
/// never undone by a second send.
@Suite struct ShutdownAndFencingTests {
    /// The real worker process against `url`.
    private func startWorker(_ h: WorkerHarness, url: String, extra: [String]) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = url
        environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
        return try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
            "worker", "--sandbox-url", h.sandbox.environment.baseURL, "--http-port", "0", "--lease-seconds", "30",
            "--poll-interval-ms", "100", "--backoff-base-ms", "20", "--backoff-cap-seconds", "0.2",
            "--request-timeout-seconds", "30", "--concurrency", "8",
        ] + extra, environment: environment)
    }

    private func transmits(_ h: WorkerHarness, _ prefix: String, count: Int) async throws {
        for n in 0..<count {
            let order = "\(prefix)-\(n)"
            try await h.insert("transmit", order: order, payload: SamplePayloads.transmit(orderID: order, amountCents: 900, declined: false))
        }
    }

    @Test(.timeLimit(.minutes(2))) func sigtermWhileEveryCallHangsExitsWithinGraceAndLeavesNothingLeased() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // FlexCharge never answers /transmit (a 30 s request timeout would be the only way out).
            h.sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .hang, latencyMilliseconds: 120_000, count: 100)])
            try await transmits(h, "hang", count: 5)
            let worker = try startWorker(h, url: h.db.url, extra: ["--grace-seconds", "2", "--reserved-cit-slots", "0"])
            try await h.waitUntil("SELECT count(*) = 5 FROM flexcharge.outbox WHERE state = 'running'")
            try await Task.sleep(for: .milliseconds(300))  // the calls are in flight
            let stopped = ContinuousClock.now
            worker.send(SIGTERM)
            let result = await worker.wait()
            let took = ContinuousClock.now - stopped
            print("SIGTERM with every call hanging, --grace-seconds 2: exited after \(took)")
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            #expect(took < .seconds(7), "exit took \(took)")
            #expect(result.stderr.contains("grace period over; cancelling calls still in flight"))
            // The cancelled calls were written as ambiguous attempts; nothing is left leased.
            let running = try await h.session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'running'").first!
            #expect(try running.decode("n", as: Int.self) == 0)
            let attempts = try await h.session.query("SELECT action, failure_class, error FROM flexcharge.attempts").rows
            let described = try attempts.map { "\(try $0.decode("action", as: String.self)) \(try $0.decode("failure_class", as: String?.self) ?? "-"): \(try $0.decode("error", as: String?.self) ?? "")" }
            #expect(described.count == 5 && described.allSatisfy { $0.hasPrefix("send ambiguous") }, "\(described)")
        }
    }

    @Test(.timeLimit(.minutes(2))) func aHealthPortThatCannotBeBoundEndsTheWorkerWithAnError() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            // Something else holds the port.
            let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(holder) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) } }
            #expect(bound == 0 && listen(holder, 1) == 0)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) } }
            let port = Int(UInt16(bigEndian: address.sin_port))

            try await transmits(h, "bind", count: 3)
            let started = ContinuousClock.now
            let worker = try startWorker(h, url: h.db.url, extra: ["--http-port", "\(port)", "--http-host", "127.0.0.1"])
            let result = await worker.wait()
            let took = ContinuousClock.now - started
            print("health port taken: the worker exited with \(result.status) after \(took): \(result.stderr.suffix(300))")
            #expect(result.status != 0, "\(result.stderr.suffix(1500))")
            #expect(took < .seconds(15), "exit took \(took)")
            let running = try await h.session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'running'").first!
            #expect(try running.decode("n", as: Int.self) == 0, "a worker that could not start left events leased")
            // The claim loop waits for the port (StartGate): nothing was claimed or sent at all.
            let touched = try await h.session.query(
                "SELECT count(*) AS n FROM flexcharge.outbox WHERE first_claimed_at IS NOT NULL OR attempts > 0").first!
            #expect(try touched.decode("n", as: Int.self) == 0, "a worker whose port was taken claimed events")
            #expect(h.sandbox.sandbox.ledger().requests.isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(2))) func sigtermWithTheDatabaseStoppedExitsWithinGrace() async throws {
        let cluster = try await ThrowawayCluster.start(name: "sigterm-frozen")
        let db = try await cluster.migratedDatabase()
        let sandbox = try await SandboxServer.start(
            FlexChargeSandbox(configuration: SandboxConfiguration(merchants: [WorkerHarness.sandboxMerchant], port: 0,
                                                                  latency: SandboxLatency(fixedMilliseconds: 1500)),
                              logger: WorkerHarness.silent),
            logger: WorkerHarness.silent)
        let h = WorkerHarness(db: db, session: db.session(), sandbox: sandbox, production: nil)
        var frozen = false
        do {
            try await h.enrol("m1")
            try await transmits(h, "frozen", count: 8)
            let worker = try startWorker(h, url: db.url, extra: ["--grace-seconds", "3"])
            try await h.waitUntil("SELECT count(*) > 0 FROM flexcharge.outbox WHERE state = 'running'")
            await h.session.close()
            try cluster.freeze()
            frozen = true
            let stopped = ContinuousClock.now
            worker.send(SIGTERM)
            let result = await worker.wait()
            let took = ContinuousClock.now - stopped
            try cluster.thaw()
            frozen = false
            print("SIGTERM with PostgreSQL stopped, --grace-seconds 3: exited after \(took)")
            #expect(result.status == 0, "\(result.stderr.suffix(1500))")
            // About 8 s on a quiet machine, 11.4 s with every suite running at once on two cores; the bound
            // leaves room for a slower CI machine (without the bounds it took grace plus the 30 s request timeout).
            #expect(took < .seconds(3 + 15), "exit took \(took)")
        } catch {
            if frozen { try? cluster.thaw() }
            await h.session.close()
            await sandbox.stop()
            try? await cluster.stop()
            throw error
        }
        await sandbox.stop()
        try await cluster.stop()
    }

    @Test(.timeLimit(.minutes(3))) func anOutcomeThatWaitedOutItsLeaseIsNotSentAgain() async throws {
        let cluster = try await ThrowawayCluster.start(name: "fencing")
        let db = try await cluster.migratedDatabase()
        let sandbox = try await SandboxServer.start(
            FlexChargeSandbox(configuration: SandboxConfiguration(merchants: [WorkerHarness.sandboxMerchant], port: 0),
                              logger: WorkerHarness.silent),
            logger: WorkerHarness.silent)
        let h = WorkerHarness(db: db, session: db.session(), sandbox: sandbox, production: nil)
        var frozen = false
        var groups: [(ServiceGroup, Task<Void, any Error>)] = []
        do {
            try await h.enrol("m1")
            // Two workers with a 4 s lease. Their calls take 2 s, and the database stops for 9 s while
            // they are in flight: every outcome waits in a writer for longer than its lease.
            for _ in 0..<2 {
                let worker = OutboxWorker(
                    configuration: h.configuration(concurrency: 8, lease: .seconds(4)), database: db.configuration,
                    sealer: try CredentialSealer(keyBytes: WorkerHarness.keyBytes), logger: WorkerHarness.silent)
                let group = ServiceGroup(configuration: .init(services: [worker], logger: WorkerHarness.silent))
                groups.append((group, Task { try await group.run() }))
            }
            sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .latency, latencyMilliseconds: 2000, count: 12)])
            try await transmits(h, "fence", count: 12)
            try await h.waitUntil("SELECT count(*) >= 8 FROM flexcharge.outbox WHERE state = 'running'")
            try cluster.freeze()
            frozen = true
            try await Task.sleep(for: .seconds(9))
            try cluster.thaw()
            frozen = false
            try await h.waitUntilSettled(timeout: .seconds(60))
            for (group, _) in groups { await group.triggerGracefulShutdown() }
            for (_, task) in groups { try await task.value }

            let sent = Dictionary(grouping: sandbox.sandbox.ledger().requests.filter { $0.route == "POST /transmit" },
                                  by: { $0.merchantOrderId ?? "?" }).mapValues(\.count)
            let twice = sent.filter { $0.value > 1 }.keys.sorted()
            let rows = try await h.session.query(
                "SELECT count(*) FILTER (WHERE state = 'succeeded') AS ok, max(attempts) AS most FROM flexcharge.outbox").first!
            let rescued = try await h.session.query(
                "SELECT count(*) AS n FROM flexcharge.attempts WHERE action = 'lease_expired'").first!.decode("n", as: Int.self)
            print("database stopped 9 s with 4 s leases: \(sent.count) orders sent, sent twice \(twice), leases rescued \(rescued)")
            #expect(try rows.decode("ok", as: Int.self) == 12)
            #expect(sent.count == 12)
            #expect(twice.isEmpty, "sent twice: \(twice)")
            // Every attempt is in the ledger once.
            let doubled = try await h.session.query(
                """
                SELECT count(*) AS n FROM (SELECT event_id, attempt, started_at FROM flexcharge.attempts WHERE action = 'send'
                 GROUP BY 1, 2, 3 HAVING count(*) > 1) d
                """).first!.decode("n", as: Int.self)
            #expect(doubled == 0)
        } catch {
            if frozen { try? cluster.thaw() }
            for (group, _) in groups { await group.triggerGracefulShutdown() }
            for (_, task) in groups { _ = try? await task.value }
            await h.session.close()
            await sandbox.stop()
            try? await cluster.stop()
            throw error
        }
        await h.session.close()
        await sandbox.stop()
        try await cluster.stop()
    }

    /// The writer's statement is idempotent: the same batch recorded twice (its first commit's answer
    /// lost) leaves one ledger row per attempt and counts as written.
    @Test func recordingTheSameBatchTwiceWritesOneLedgerRowAndCountsAsWritten() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("transmit", order: "twice", payload: SamplePayloads.transmit(orderID: "twice", amountCents: 900, declined: false))
            let store = OutboxStore()
            let claimed = try await store.claim(on: h.session, worker: "w1", total: 1, laneCaps: [1, 1, 1, 1], lease: .seconds(30))
            #expect(claimed.map(\.id) == [id])
            let completion = Completion(
                eventID: id, attempt: 1, action: .send, environment: "sandbox", startedAt: Date(), finishedAt: Date(),
                httpStatus: 200, outcome: .succeeded, transactionKey: "tx-1")
            #expect(try await store.record([completion], worker: "w1", on: h.session) == [id])
            #expect(try await store.record([completion], worker: "w1", on: h.session, retrying: true) == [id])
            #expect(try await h.attempts(id).count == 1)
            #expect(try await h.event(id).decode("state", as: String.self) == "succeeded")
        }
    }

    /// An outcome for an attempt the event has moved past (rescued and claimed again) is not written.
    @Test func anOutcomeOfAnEarlierAttemptDoesNotOverwriteALaterOne() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let id = try await h.insert("transmit", order: "late", payload: SamplePayloads.transmit(orderID: "late", amountCents: 900, declined: false))
            let store = OutboxStore()
            _ = try await store.claim(on: h.session, worker: "w1", total: 1, laneCaps: [1, 1, 1, 1], lease: .seconds(30))
            // w1's lease expires, the rescue returns the event; w1's outcome for attempt 1 still lands.
            try await h.session.execute("UPDATE flexcharge.outbox SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [id])
            #expect(try await store.rescueExpiredLeases(policy: RetryPolicy(maxAttempts: 5), hold: .seconds(30), on: h.session) == 1)
            let first = Completion(
                eventID: id, attempt: 1, action: .send, environment: "sandbox", startedAt: Date(), finishedAt: Date(),
                httpStatus: 200, outcome: .succeeded, transactionKey: "tx-1")
            #expect(try await store.record([first], worker: "w1", on: h.session) == [id])
            #expect(try await h.event(id).decode("state", as: String.self) == "succeeded")

            // Another event: rescued, then claimed again by w2 (attempt 2); w1's late outcome of attempt 1 loses.
            let other = try await h.insert("transmit", order: "later", payload: SamplePayloads.transmit(orderID: "later", amountCents: 900, declined: false))
            _ = try await store.claim(on: h.session, worker: "w1", total: 1, laneCaps: [1, 1, 1, 1], lease: .seconds(30))
            try await h.session.execute("UPDATE flexcharge.outbox SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [other])
            _ = try await store.rescueExpiredLeases(policy: RetryPolicy(maxAttempts: 5), on: h.session)
            let again = try await store.claim(on: h.session, worker: "w2", total: 1, laneCaps: [1, 1, 1, 1], lease: .seconds(30))
            #expect(again.map(\.attempt) == [2])
            let late = Completion(
                eventID: other, attempt: 1, action: .send, environment: "sandbox", startedAt: Date(), finishedAt: Date(),
                httpStatus: 200, outcome: .succeeded, transactionKey: "tx-late")
            #expect(try await store.record([late], worker: "w1", on: h.session).isEmpty)
            let row = try await h.event(other)
            #expect(try row.decode("state", as: String.self) == "running")
            #expect(try row.decode("lease_owner", as: String?.self) == "w2")
        }
    }
}
