import AsyncHTTPClient
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
@testable import LibPQ
import Logging
import NIOCore
import NIOHTTP1
@testable import OutboxEngine
import ServiceLifecycle
import Testing
import TestSupport

/// The worker against a database that stops answering (SIGSTOP of a cluster of this test's own)
/// and against killed connections (`pg_terminate_backend`): readiness turns within seconds and
/// back, statements fail instead of hanging, the listener LISTENs again, nothing is lost.
@Suite struct DatabaseFailureTests {
    /// Kills the client backends of the harness's database other than the harness's own session.
    @discardableResult
    static func terminate(_ h: WorkerHarness, where filter: String) async throws -> Int {
        try await h.session.query(
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND (\(filter))
            """
        ).rows.count
    }

    /// Inserts an approved CIT evaluate and returns how long after its insert the worker started its
    /// call (the first attempt's `started_at` minus the row's `created_at`).
    static func pickUpLatency(_ h: WorkerHarness, order: String) async throws -> Duration {
        let id = try await h.insert("evaluate", order: order, payload: h.approvedCITEvaluate(order: order))
        try await h.waitUntil("SELECT count(*) > 0 FROM flexcharge.attempts WHERE event_id = $1", [id], timeout: .seconds(15))
        let ms = try await h.session.query(
            """
            SELECT extract(epoch FROM a.started_at - o.created_at) * 1000 AS ms
              FROM flexcharge.attempts a JOIN flexcharge.outbox o ON o.id = a.event_id
             WHERE a.event_id = $1 ORDER BY a.id LIMIT 1
            """, [id]
        ).first!.decode("ms", as: Double.self)
        return .milliseconds(Int64(ms.rounded()))
    }

    @Test(.timeLimit(.minutes(2))) func killedConnectionsComeBackAndTheListenerListensAgain() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            var configuration = h.configuration()
            // Only a NOTIFY can explain a pick-up well under this.
            configuration.pollInterval = .seconds(5)
            let recorder = LogRecorder()
            try await h.runWorker(configuration, logger: recorder.logger) {
                try await h.waitUntil(
                    "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
                // The first call also fetches a token and opens an HTTP connection: not measured.
                _ = try await Self.pickUpLatency(h, order: "warm-up")
                let before = try await Self.pickUpLatency(h, order: "before-kill")

                // After each kill: wait until a new backend LISTENs again, then let the wake-up that
                // the reconnect itself causes pass, so the measured pick-up owes nothing to it.
                func listenerPID() async throws -> Int32 {
                    try await h.session.query(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    ).first!.decode("pid")
                }
                func waitForNewListener(replacing old: Int32) async throws {
                    try await h.waitUntil(
                        """
                        SELECT count(*) = 1 FROM pg_stat_activity
                         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> $1
                        """, [old], timeout: .seconds(10))
                    try await Task.sleep(for: .milliseconds(1500))
                }
                let firstListener = try await listenerPID()
                #expect(try await Self.terminate(h, where: "query LIKE 'LISTEN%'") == 1)
                try await waitForNewListener(replacing: firstListener)
                let afterListener = try await Self.pickUpLatency(h, order: "after-listener-kill")

                // Every connection of the worker: claim, writer, listener, maintenance, outcomes, probe.
                let secondListener = try await listenerPID()
                let killed = try await Self.terminate(h, where: "true")
                #expect(killed >= 6, "\(killed) backends killed")
                try await waitForNewListener(replacing: secondListener)
                let afterAll = try await Self.pickUpLatency(h, order: "after-all-killed")
                let followUp = try await Self.pickUpLatency(h, order: "after-all-killed-2")
                try await h.waitUntilSettled()
                print("CIT pick-up latency: before \(before), after killing the listener \(afterListener), after killing every connection \(afterAll), next \(followUp)")
                for latency in [before, afterListener, afterAll, followUp] {
                    #expect(latency < .milliseconds(3000), "picked up after \(latency): NOTIFY was lost, the 5 s poll found it")
                }
            }
            let states = try await h.session.query("SELECT state, count(*) AS n FROM flexcharge.outbox GROUP BY state").rows
                .map { "\(try $0.decode("state", as: String.self))=\(try $0.decode("n", as: Int.self))" }
            #expect(states == ["succeeded=5"])
            let logs = recorder.all
            #expect(logs.contains { $0.contains("listener reconnected to PostgreSQL") }, "\(logs.suffix(20))")
            #expect(logs.contains { $0.contains("reconnected to PostgreSQL") && $0.contains("db_session: claim") || $0.contains("\"db_session\": claim") },
                    "\(logs.filter { $0.contains("PostgreSQL") })")
        }
    }

    /// SIGSTOP of every process of the database for ~18 s while the worker runs and calls are in
    /// flight: a statement fails within the worker's statement timeout plus the grace, `/readyz`'s
    /// WorkerHealth turns unready within a few seconds (logged once) and ready again after SIGCONT,
    /// and every event is delivered exactly once and recorded.
    @Test(.timeLimit(.minutes(2))) func aStoppedDatabaseTurnsTheWorkerUnreadyWithinSecondsAndNothingIsLost() async throws {
        let cluster = try await ThrowawayCluster.start(name: "sigstop-worker")
        let db = try await cluster.migratedDatabase()
        let sandbox = try await SandboxServer.start(
            FlexChargeSandbox(
                configuration: SandboxConfiguration(merchants: [WorkerHarness.sandboxMerchant], port: 0), logger: WorkerHarness.silent),
            logger: WorkerHarness.silent)
        let h = WorkerHarness(db: db, session: db.session(), sandbox: sandbox, production: nil)
        let victim = PGSession(
            configuration: PGConfiguration(url: db.url, statementTimeout: OutboxWorker.statementTimeout), name: "victim")
        var frozen = false
        do {
            try await h.enrol("m1")
            let recorder = LogRecorder()
            let health = WorkerHealth()
            let worker = OutboxWorker(
                configuration: h.configuration(), database: db.configuration,
                sealer: try CredentialSealer(keyBytes: WorkerHarness.keyBytes), health: health, logger: recorder.logger)
            let group = ServiceGroup(configuration: .init(services: [worker], logger: WorkerHarness.silent))
            let running = Task { try await group.run() }

            func transmit(_ order: String) async throws {
                try await h.insert("transmit", order: order, payload: SamplePayloads.transmit(orderID: order, amountCents: 900, declined: false))
            }
            for i in 0..<5 { try await transmit("before-\(i)") }
            try await h.waitUntilSettled()
            #expect(health.isReady)
            // Five calls that take 3 s: they are answered while the database is stopped, so their
            // outcomes wait in the worker.
            sandbox.sandbox.setFaults([FaultRule(route: "POST /transmit", kind: .latency, latencyMilliseconds: 3000, count: 5)])
            for i in 0..<5 { try await transmit("during-\(i)") }
            try await h.waitUntil("SELECT count(*) = 5 FROM flexcharge.outbox WHERE state = 'running'")
            try await victim.connect()

            #expect(try cluster.freeze() > 5)
            frozen = true
            let stoppedAt = ContinuousClock.now
            let statement = Task { () -> (Duration, PGError?) in
                do {
                    try await victim.query("SELECT 1")
                    return (ContinuousClock.now - stoppedAt, nil)
                } catch {
                    return (ContinuousClock.now - stoppedAt, error as? PGError)
                }
            }
            var unreadyAfter: Duration?
            var flapped = false
            while ContinuousClock.now - stoppedAt < .seconds(18) {
                if !health.isReady, unreadyAfter == nil { unreadyAfter = ContinuousClock.now - stoppedAt }
                if health.isReady, unreadyAfter != nil { flapped = true }
                try await Task.sleep(for: .milliseconds(100))
            }
            let (statementAfter, statementError) = await statement.value
            try cluster.thaw()
            frozen = false
            let thawedAt = ContinuousClock.now
            while !health.isReady && ContinuousClock.now - thawedAt < .seconds(15) {
                try await Task.sleep(for: .milliseconds(100))
            }
            let readyAfter = ContinuousClock.now - thawedAt
            print("stopped database: statement failed after \(statementAfter); unready after \(unreadyAfter.map { "\($0)" } ?? "never"); ready again \(readyAfter) after SIGCONT")

            #expect(statementError?.kind == .connection, "\(String(describing: statementError))")
            #expect(statementAfter < OutboxWorker.statementTimeout + PGConfiguration.cancelGrace + .seconds(1), "\(statementAfter)")
            #expect(unreadyAfter.map { $0 < .seconds(10) } == true, "unready after \(String(describing: unreadyAfter))")
            #expect(!flapped, "readiness came back while the database was stopped")
            #expect(health.isReady, "not ready \(readyAfter) after SIGCONT: \(health.notReadyReason ?? "")")
            #expect(readyAfter < .seconds(10))

            for i in 0..<5 { try await transmit("after-\(i)") }
            try await h.waitUntilSettled(timeout: .seconds(30))
            await group.triggerGracefulShutdown()
            try await running.value

            let rows = try await h.session.query(
                """
                SELECT o.order_id, o.state, o.attempts, (SELECT count(*) FROM flexcharge.attempts a WHERE a.event_id = o.id) AS ledger
                  FROM flexcharge.outbox o ORDER BY o.id
                """
            ).rows
            #expect(rows.count == 15)
            var duplicated: [String] = []
            for row in rows {
                let order: String = try row.decode("order_id")
                #expect(try row.decode("state", as: String.self) == "succeeded", "\(order)")
                #expect(try row.decode("attempts", as: Int.self) == 1, "\(order)")
                if try row.decode("ledger", as: Int.self) != 1 { duplicated.append(order) }
            }
            let leaseLost = recorder.all.filter { $0.contains("lease lost before the outcome was written") }.count
            print("stopped database: attempt rows written twice for \(duplicated), 'lease lost' warnings: \(leaseLost)")
            // An outcome batch sent to the stopped server is given up (its answer never came), but the
            // server runs it when it resumes; the writer's retry must then find it recorded, not insert
            // its attempt rows again (OutboxStore.record is idempotent).
            #expect(duplicated.isEmpty, "attempt rows written twice: \(duplicated)")
            #expect(leaseLost == 0, "'lease lost' warnings: \(leaseLost)")
            let transmits = sandbox.sandbox.ledger().requests.filter { $0.route == "POST /transmit" }.count
            #expect(transmits == 15, "FlexCharge got \(transmits) transmits for 15 events")
            let logs = recorder.all
            var lineCounts: [String: Int] = [:]
            for line in logs where !line.hasPrefix("info") && !line.hasPrefix("debug") && !line.hasPrefix("trace") {
                lineCounts[String(line.prefix { $0 != "[" }), default: 0] += 1
            }
            print("stopped database: log lines at notice and above: \(lineCounts.sorted { $0.key < $1.key })")
            let down = logs.filter { $0.contains("database not answering") }
            let up = logs.filter { $0.contains("database answering again") }
            #expect(down.count == 1, "\(down)")
            #expect(up.count == 1, "\(up)")
            #expect(!logs.contains { $0.contains("flexcharge:flexcharge@") || $0.contains("password") })
        } catch {
            if frozen { try? cluster.thaw() }
            await victim.close()
            await h.session.close()
            await sandbox.stop()
            try? await cluster.stop()
            throw error
        }
        await victim.close()
        await h.session.close()
        await sandbox.stop()
        try await cluster.stop()
    }
    /// The worker process's `/readyz` over HTTP while its database is stopped (a cluster of this
    /// test's own): 503 with the reason within seconds, 200 again after SIGCONT, and the operator's
    /// log says so once each way.
    @Test(.timeLimit(.minutes(2))) func readyzOfTheWorkerProcessFollowsAStoppedDatabase() async throws {
        let cluster = try await ThrowawayCluster.start(name: "sigstop-readyz")
        let db = try await cluster.migratedDatabase()
        let port = try freeTCPPort()
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = db.url
        environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
        let worker = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
            "worker", "--sandbox-url", "http://127.0.0.1:9", "--http-port", String(port), "--http-host", "127.0.0.1",
        ], environment: environment)
        func readyz() async -> (Int, String)? {
            guard let response = try? await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(2)),
                let body = try? await response.body.collect(upTo: 1 << 16)
            else { return nil }
            return (Int(response.status.code), String(buffer: body))
        }
        func waitFor(status: Int, within limit: Duration) async -> (Duration, String)? {
            let started = ContinuousClock.now
            while ContinuousClock.now - started < limit {
                if let (code, body) = await readyz(), code == status { return (ContinuousClock.now - started, body) }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return nil
        }
        var frozen = false
        do {
            #expect(await waitFor(status: 200, within: .seconds(20)) != nil, "the worker never became ready")
            try cluster.freeze()
            frozen = true
            let unready = await waitFor(status: 503, within: .seconds(15))
            try await Task.sleep(for: .seconds(3))
            let stillUnready = await readyz()
            try cluster.thaw()
            frozen = false
            let ready = await waitFor(status: 200, within: .seconds(15))
            print("worker process /readyz: 503 after \(unready.map { "\($0.0)" } ?? "never") (\(unready?.1.trimmingCharacters(in: .newlines) ?? "")); 200 again \(ready.map { "\($0.0)" } ?? "never") after SIGCONT")
            #expect(unready.map { $0.0 < .seconds(10) } == true)
            #expect(unready?.1.hasPrefix("not ready: the database is not answering: PostgreSQL did not answer within") == true, "\(String(describing: unready))")
            #expect(stillUnready?.0 == 503)
            #expect(ready.map { $0.0 < .seconds(10) } == true)
            worker.send(SIGTERM)
            #expect(await worker.wait().status == 0)
            let output = worker.stdout + worker.stderr
            #expect(output.components(separatedBy: "database not answering; /readyz reports not ready until it does").count == 2, "\(output.suffix(3000))")
            #expect(output.components(separatedBy: "database answering again; ready").count == 2, "\(output.suffix(3000))")
            #expect(!output.contains("flexcharge:flexcharge@"))
        } catch {
            if frozen { try? cluster.thaw() }
            worker.send(SIGKILL)
            _ = await worker.wait()
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }
}
