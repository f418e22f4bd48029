import Foundation
@testable import LibPQ
import Testing
import TestSupport

/// Statements that cannot hang: statement timeouts, cancellation, closed sessions, reconnects
/// that re-LISTEN, pinned sessions that refuse to reconnect, the migrator's lock — and a server
/// whose processes are stopped (a cluster of this test's own).
@Suite struct ConnectionLivenessTests {
    /// Terminates the backends of `database` other than `admin`'s own that match `filter` (SQL on
    /// pg_stat_activity); returns how many.
    @discardableResult
    static func terminate(on admin: PGSession, database: String, where filter: String = "true") async throws -> Int {
        try await admin.query(
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND (\(filter))
            """, [database]
        ).rows.count
    }

    @Test func everyConnectionGetsKeepalivesAndAUserTimeoutUnlessTheURLSetsThem() async throws {
        try await TestDatabase.with { db in
            let plain = db.session()
            try await plain.connect()
            for (keyword, value) in PGConfiguration.connectionDefaults {
                // scripts/test sets PGCONNECT_TIMEOUT (every suite at once is slow to connect): libpq's variable wins.
                let expected = keyword == "connect_timeout" ? (ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] ?? value) : value
                #expect(await plain.settledOption(keyword) == expected, "\(keyword)")
            }
            // What the kernel has on the socket (TCP_KEEPIDLE 4, TCP_KEEPINTVL 5, TCP_KEEPCNT 6, TCP_USER_TIMEOUT 18).
            #expect(await plain.tcpSocketOption(4) == 5)
            #expect(await plain.tcpSocketOption(5) == 2)
            #expect(await plain.tcpSocketOption(6) == 2)
            #expect(await plain.tcpSocketOption(18) == 9000)
            await plain.close()

            let url = db.url + (db.url.contains("?") ? "&" : "?") + "keepalives_idle=30&tcp_user_timeout=0&connect_timeout=17"
            let user = PGSession(configuration: PGConfiguration(url: url))
            try await user.connect()
            #expect(await user.settledOption("keepalives_idle") == "30")
            #expect(await user.settledOption("connect_timeout") == "17")
            #expect(await user.settledOption("keepalives_interval") == "2")
            #expect(await user.tcpSocketOption(4) == 30)
            #expect(await user.tcpSocketOption(18) == 0)
            #expect(await user.settledOption("password") == nil)
            await user.close()
        }
    }

    @Test func theSessionStatementTimeoutIsAppliedUnlessTheURLSetsOne() async throws {
        try await TestDatabase.with { db in
            let plain = db.session()
            #expect(try await plain.query("SHOW statement_timeout").first!.decode(0, as: String.self) == "1min")
            #expect(await plain.effectiveStatementTimeout == .seconds(60))
            try await plain.setStatementTimeout(.milliseconds(1500))
            #expect(try await plain.query("SHOW statement_timeout").first!.decode(0, as: String.self) == "1500ms")
            await plain.close()

            let url = db.url + (db.url.contains("?") ? "&" : "?") + "options=-c%20statement_timeout%3D1234"
            let user = PGSession(configuration: PGConfiguration(url: url, statementTimeout: .seconds(5)))
            #expect(try await user.query("SHOW statement_timeout").first!.decode(0, as: String.self) == "1234ms")
            #expect(await user.effectiveStatementTimeout == .milliseconds(1234))
            try await user.setStatementTimeout(nil)  // the user's setting stays
            #expect(try await user.query("SHOW statement_timeout").first!.decode(0, as: String.self) == "1234ms")
            await user.close()
        }
    }

    @Test func aSlowStatementFailsAtTheStatementTimeoutAndTheSessionGoesOn() async throws {
        try await TestDatabase.with { db in
            let session = PGSession(configuration: PGConfiguration(url: db.url, statementTimeout: .seconds(1)))
            let started = ContinuousClock.now
            let error = await #expect(throws: PGError.self) { try await session.query("SELECT pg_sleep(10)") }
            let elapsed = ContinuousClock.now - started
            #expect(error?.sqlState == "57014")
            #expect(elapsed < .seconds(6), "\(elapsed)")  // the 1 s timeout, not the 10 s sleep (generous: every suite runs at once)
            let one = try await session.query("SELECT 1 AS one").first!.decode("one", as: Int.self)
            #expect(one == 1)
            #expect(await session.connectionGeneration == 1)
            await session.close()
        }
    }

    @Test func aCancelledTaskCancelsItsStatementOnTheServer() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let generation = try await { try await session.connect(); return await session.connectionGeneration }()
            let started = ContinuousClock.now
            let task = Task { try await session.query("SELECT pg_sleep(30)") }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let result = await task.result
            let elapsed = ContinuousClock.now - started
            guard case .failure(let error as PGError) = result else {
                Issue.record("expected a PGError, got \(result)")
                return
            }
            #expect(error.kind == .cancelled)
            #expect(elapsed < .seconds(6), "\(elapsed)")  // cancelled at 0.3 s, not the 30 s sleep (generous: every suite runs at once)
            // The server answered the cancel: the same connection goes on.
            #expect(try await session.query("SELECT 1 AS one").first!.decode("one", as: Int.self) == 1)
            #expect(await session.connectionGeneration == generation)
            await session.close()
        }
    }

    /// Clean-up after a cancellation still reaches the database: only a statement that is waiting
    /// when the cancellation arrives is cancelled.
    @Test func aStatementStartedByAnAlreadyCancelledTaskRuns() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let task = Task { () throws -> Int in
                try? await Task.sleep(for: .seconds(30))  // ends at the cancellation
                #expect(Task.isCancelled)
                return try await session.query("SELECT 7 AS n FROM pg_sleep(0.3)").first!.decode("n", as: Int.self)
            }
            task.cancel()
            let value = try await task.value
            #expect(value == 7)
            await session.close()
        }
    }

    @Test func aClosedSessionFailsAtOnce() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            try await session.execute("SELECT 1")
            await session.close()
            let started = ContinuousClock.now
            let error = await #expect(throws: PGError.self) { try await session.query("SELECT 1") }
            #expect(error?.kind == .usage)
            #expect(error?.message == "the session is closed")
            #expect(ContinuousClock.now - started < .seconds(5))  // at once, not a hang (generous: every suite runs at once)
        }
    }

    @Test func aTerminatedListenerReconnectsAndListensAgain() async throws {
        try await TestDatabase.with { db in
            let listener = db.session("listener")
            let admin = db.session("admin")
            try await listener.listen("liveness_test")
            #expect(await listener.connectionGeneration == 1)
            #expect(try await Self.terminate(on: admin, database: db.name, where: "query LIKE 'LISTEN%'") == 1)
            // The next wait notices the loss, reconnects and LISTENs again, without an error.
            var generation: UInt64 = 1
            for _ in 0..<20 where generation == 1 {
                _ = try? await listener.waitForNotifications(timeoutMilliseconds: 100)
                generation = await listener.connectionGeneration
            }
            #expect(generation == 2)
            try await admin.execute("SELECT pg_notify('liveness_test', 'after the kill')")
            var received: [PGNotification] = []
            for _ in 0..<20 where received.isEmpty {
                received = try await listener.waitForNotifications(timeoutMilliseconds: 100)
            }
            #expect(received.map(\.payload) == ["after the kill"])
            await listener.close()
            await admin.close()
        }
    }

    @Test func aReconnectIsLoggedOnceAndNeverWithTheConninfo() async throws {
        try await TestDatabase.with { db in
            let recorder = LogRecorder()
            let session = PGSession(configuration: db.configuration, name: "logged", logger: recorder.logger)
            let admin = db.session("admin")
            let pid = try await session.query("SELECT pg_backend_pid() AS pid").first!.decode("pid", as: Int32.self)
            try await admin.execute("SELECT pg_terminate_backend($1)", [pid])
            try await Task.sleep(for: .milliseconds(200))
            try await session.execute("SELECT 1")  // reconnects first
            try await session.execute("SELECT 1")
            #expect(await session.connectionGeneration == 2)
            let lines = recorder.all
            #expect(lines.filter { $0.contains("lost the connection to PostgreSQL; reconnecting on next use") }.count == 1, "\(lines)")
            #expect(lines.filter { $0.contains("reconnected to PostgreSQL") && $0.contains("logged") }.count == 1, "\(lines)")
            #expect(lines.count == 2, "\(lines)")
            #expect(!lines.contains { $0.contains(db.url) || $0.contains(":flexcharge@") })
            await session.close()
            _ = try? await session.execute("SELECT 1")
            #expect(recorder.all.count == 2, "a closed session logs nothing")
            await admin.close()
        }
    }

    @Test func aPinnedSessionDoesNotReconnectBehindItsOwnersBack() async throws {
        try await TestDatabase.with { db in
            let session = db.session("pinned")
            let admin = db.session("admin")
            try await session.pin(reason: "holds an advisory lock")
            try await session.execute("SELECT pg_advisory_lock(42)")
            let pid = try await session.query("SELECT pg_backend_pid() AS pid").first!.decode("pid", as: Int32.self)
            try await admin.execute("SELECT pg_terminate_backend($1)", [pid])
            try await Task.sleep(for: .milliseconds(200))
            let error = await #expect(throws: PGError.self) { try await session.execute("SELECT 1") }
            #expect(error?.kind == .connection)
            #expect(error?.message.contains("not reconnecting because this session holds an advisory lock") == true)
            #expect(await session.connectionGeneration == 1)
            await session.unpin()
            try await session.execute("SELECT 1")
            #expect(await session.connectionGeneration == 2)
            await session.close()
            await admin.close()
        }
    }

    /// The migrator's connection is killed while a migration waits for a lock: the run fails, the
    /// migration is not recorded, nothing ran on a new connection without the advisory lock, and a
    /// later run applies it.
    @Test func aMigrationWhoseConnectionIsKilledFailsInsteadOfGoingOnUnlocked() async throws {
        try await TestDatabase.withEmpty { db in
            let admin = db.session("admin")
            try await admin.execute("CREATE TABLE gate (id int)")
            let migrations = [
                Migration(version: 1, name: "first", fileName: "0001_first.sql", sql: "CREATE TABLE one (id int);"),
                Migration(version: 2, name: "blocked", fileName: "0002_blocked.sql", sql: "LOCK TABLE gate IN ACCESS EXCLUSIVE MODE; CREATE TABLE two (id int);"),
                Migration(version: 3, name: "third", fileName: "0003_third.sql", sql: "CREATE TABLE three (id int);"),
            ]
            let migrator = PGMigrator(migrations: migrations, schema: "mig")
            let session = db.session("migrator")
            // The admin holds the gate, so migration 2 waits inside its transaction.
            let holder = db.session("holder")
            try await holder.execute("BEGIN")
            try await holder.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
            let run = Task { try await migrator.migrate(on: session) }
            try await waitFor(admin, """
                SELECT count(*) = 1 FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE gate%'
                """)
            #expect(try await Self.terminate(on: admin, database: db.name, where: "wait_event_type = 'Lock'") == 1)
            let result = await run.result
            guard case .failure(let error) = result else {
                Issue.record("the migration went on after its connection was killed: \(result)")
                return
            }
            #expect((error as? PGError)?.isConnectionFailure == true, "\(error)")
            // The cleanup after the failure did not reconnect either.
            #expect(await session.connectionGeneration == 1)
            #expect(await !session.isConnected)
            try await holder.execute("COMMIT")
            let recorded = try await admin.query("SELECT array_agg(version ORDER BY version) AS v FROM mig.schema_migrations")
                .first!.decode("v", as: [Int].self)
            #expect(recorded == [1])
            #expect(try await admin.query("SELECT to_regclass('three') IS NULL AS absent").first!.decode("absent", as: Bool.self))
            #expect(try await admin.query("""
                SELECT count(*) = 0 AS free FROM pg_locks
                 WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """).first!
                .decode("free", as: Bool.self))
            // Unpinned again: the same session reconnects and finishes the job.
            let applied = try await migrator.migrate(on: session)
            #expect(applied.map(\.version) == [2, 3])
            #expect(await session.statementTimeout == PGConfiguration.defaultStatementTimeout)
            for s in [session, holder, admin] { await s.close() }
        }
    }

    /// A server whose processes are stopped (SIGSTOP: the host still answers TCP) on a cluster of
    /// this test's own: a statement fails at its deadline, a cancelled task gets its answer after
    /// the cancel grace, connecting fails at connect_timeout; after SIGCONT the session goes on.
    @Test(.timeLimit(.minutes(2))) func aStoppedServerMakesStatementsFailInsteadOfHanging() async throws {
        let cluster = try await ThrowawayCluster.start(name: "frozen")
        let session = PGSession(configuration: PGConfiguration(url: cluster.url, statementTimeout: .seconds(2)), name: "frozen")
        let cancelled = PGSession(configuration: PGConfiguration(url: cluster.url), name: "frozen-cancel")
        let fresh = PGSession(configuration: PGConfiguration(url: cluster.url + "?connect_timeout=2"), name: "frozen-connect")
        try await session.connect()
        try await cancelled.connect()
        var thawed = false
        do {
            #expect(try cluster.freeze() > 2)
            func timed(_ body: @Sendable () async throws -> Void) async -> (Duration, (any Error)?) {
                let started = ContinuousClock.now
                do {
                    try await body()
                    return (ContinuousClock.now - started, nil)
                } catch {
                    return (ContinuousClock.now - started, error)
                }
            }
            async let statement = timed { try await session.query("SELECT 1") }
            async let cancelledStatement = timed {
                let task = Task { try await cancelled.query("SELECT 1") }
                try await Task.sleep(for: .milliseconds(500))
                task.cancel()
                _ = try await task.value
            }
            async let connecting = timed { try await fresh.connect() }
            let (statementTime, statementError) = await statement
            let (cancelTime, cancelError) = await cancelledStatement
            let (connectTime, connectError) = await connecting
            print("frozen server: statement failed after \(statementTime), cancelled after \(cancelTime), connect after \(connectTime)")
            // 2 s statement timeout + 2 s grace; 0.5 s + 2 s grace; connect_timeout 2 s.
            #expect((statementError as? PGError)?.kind == .connection, "\(String(describing: statementError))")
            #expect(statementTime >= .seconds(4) && statementTime < .seconds(9), "\(statementTime)")
            #expect((cancelError as? PGError)?.kind == .cancelled, "\(String(describing: cancelError))")
            #expect(cancelTime >= .milliseconds(2400) && cancelTime < .seconds(6), "\(cancelTime)")
            #expect((connectError as? PGError)?.kind == .connection, "\(String(describing: connectError))")
            #expect(connectTime >= .seconds(2) && connectTime < .seconds(6), "\(connectTime)")
            try cluster.thaw()
            thawed = true
        } catch {
            if !thawed { try? cluster.thaw() }
            throw error
        }
        if !thawed { try? cluster.thaw() }
        // The server is back: each session reconnects on its next statement.
        #expect(try await session.query("SELECT 1 AS one").first!.decode("one", as: Int.self) == 1)
        #expect(await session.connectionGeneration == 2)
        #expect(try await cancelled.query("SELECT 1 AS one").first!.decode("one", as: Int.self) == 1)
        try await fresh.connect()
        for s in [session, cancelled, fresh] { await s.close() }
        try await cluster.stop()
    }
}

/// Polls until the SQL returns true (10 s at most).
func waitFor(_ session: PGSession, _ sql: String) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if try await session.query(sql).first?.decode(0, as: Bool.self) == true { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestSupportError("timed out waiting for: \(sql)")
}
