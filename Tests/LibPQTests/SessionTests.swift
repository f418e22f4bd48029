import Foundation
@testable import LibPQ
import Testing
import TestSupport

@Suite struct SessionTests {
    @Test func aFailedTransactionLeavesNothingBehind() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
            await #expect(throws: PGError.self) {
                try await session.withTransaction { tx in
                    try tx.execute("INSERT INTO t VALUES (1, 'first')")
                    try tx.execute("INSERT INTO t VALUES (1, 'duplicate key')")
                }
            }
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await session.withTransaction { tx in
                    try tx.execute("INSERT INTO t VALUES (2, 'second')")
                    throw Boom()
                }
            }
            let count = try await session.query("SELECT count(*) AS n FROM t").first!.decode("n", as: Int.self)
            #expect(count == 0)
            // The session is usable after both rollbacks, and a good transaction commits.
            try await session.withTransaction { tx in try tx.execute("INSERT INTO t VALUES (3, 'kept')") }
            #expect(try await session.query("SELECT count(*) AS n FROM t").first!.decode("n", as: Int.self) == 1)
        }
    }

    @Test func serverErrorsCarrySQLStateButNotParameterValues() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            try await session.execute("CREATE TABLE t (id int PRIMARY KEY, secret text CHECK (length(secret) < 5))")
            let error = await #expect(throws: PGError.self) {
                try await session.execute("INSERT INTO t VALUES ($1, $2)", [1, "4111111111111111"])
            }
            #expect(error?.sqlState == "23514")
            #expect(error?.constraint == "t_secret_check")
            #expect(!(error?.description.contains("4111111111111111") ?? true))
        }
    }

    @Test func aNotifySentOnOneConnectionArrivesOnAnothersListen() async throws {
        try await TestDatabase.with { db in
            let listener = db.session("listener")
            let sender = db.session("sender")
            defer { Task { await listener.close(); await sender.close() } }
            try await listener.listen("flexcharge_test")
            try await sender.execute("SELECT pg_notify('flexcharge_test', $1)", ["payload ✓"])
            var received: [PGNotification] = []
            for _ in 0..<20 where received.isEmpty {
                received = try await listener.waitForNotifications(timeoutMilliseconds: 250)
            }
            #expect(received.count == 1)
            #expect(received.first?.channel == "flexcharge_test")
            #expect(received.first?.payload == "payload ✓")
        }
    }

    @Test func aPooledConnectionSurvivesAServerRestart() async throws {
        let cluster = try await ThrowawayCluster.start(name: "restart")
        let pool = PGPool(configuration: PGConfiguration(url: cluster.url), size: 2)
        let before = try await pool.withSession { try await $0.query("SELECT pg_backend_pid() AS pid").first!.decode("pid", as: Int32.self) }
        try await cluster.restart()
        // The first statement after the restart succeeds: the dead connection is noticed and
        // replaced before it is used.
        let after = try await pool.withSession { try await $0.query("SELECT pg_backend_pid() AS pid, 1 AS ok").first! }
        #expect(try after.decode("ok", as: Int.self) == 1)
        #expect(try after.decode("pid", as: Int32.self) != before)
        await pool.close()
        try await cluster.stop()
    }

    @Test func connectingToNothingFailsWithOneReadableLine() async throws {
        let port = try freeTCPPort()
        let session = PGSession(configuration: PGConfiguration(url: "postgresql://u:hunter2secret@127.0.0.1:\(port)/db"))
        let error = await #expect(throws: PGError.self) { try await session.connect() }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("\n") == false)
        #expect(error?.message.contains("hunter2secret") == false)
        await session.close()
    }
}
