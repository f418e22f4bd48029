import Foundation
import LibPQ
import Testing
import TestSupport

@Suite struct MigrateCommandTests {
    @Test func fourProcessesMigratingAtOnceApplyEachFileExactlyOnce() async throws {
        try await TestDatabase.withEmpty { db in
            let runs = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await runCLI(["migrate", "--database-url", db.url, "--migrations", PackagePaths.migrations])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for run in runs { #expect(run.status == 0, "\(run.stderr)") }
            let files = try Migration.load(directory: PackagePaths.migrations)
            // Exactly one process applied each file; the others found nothing left to do.
            let appliedLines = runs.flatMap { $0.stdout.split(separator: "\n").filter { $0.hasPrefix("applied ") } }
            #expect(appliedLines.count == files.count)
            #expect(Set(appliedLines).count == files.count)
            let session = db.session()
            let recorded = try await session.query("SELECT version FROM flexcharge.schema_migrations ORDER BY version")
            #expect(try recorded.rows.map { try $0.decode("version", as: Int.self) } == files.map(\.version))
            await session.close()

            let status = try await runCLI(["migrate", "--status", "--database-url", db.url, "--migrations", PackagePaths.migrations])
            #expect(status.status == 0)
            #expect(status.stdout.contains("\(files.count) applied, 0 pending"))
        }
    }

    @Test func aChangedAppliedFileIsRefused() async throws {
        try await TestDatabase.withEmpty { db in
            let folder = NSTemporaryDirectory() + "migrations-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try "CREATE TABLE flexcharge.one (id int);".write(toFile: folder + "/0001_one.sql", atomically: true, encoding: .utf8)
            let first = try await runCLI(["migrate", "--database-url", db.url, "--migrations", folder])
            #expect(first.status == 0, "\(first.stderr)")

            try "CREATE TABLE flexcharge.one (id bigint);".write(toFile: folder + "/0001_one.sql", atomically: true, encoding: .utf8)
            try "CREATE TABLE flexcharge.two (id int);".write(toFile: folder + "/0002_two.sql", atomically: true, encoding: .utf8)
            let second = try await runCLI(["migrate", "--database-url", db.url, "--migrations", folder])
            #expect(second.status != 0)
            #expect(second.stderr.contains("0001_one.sql was changed after it was applied"))
            #expect(second.stderr.split(separator: "\n").count == 1)

            // Nothing after the changed file was applied.
            let session = db.session()
            let two = try await session.query("SELECT to_regclass('flexcharge.two') IS NULL AS missing").first!
            #expect(try two.decode("missing", as: Bool.self))
            await session.close()

            let status = try await runCLI(["migrate", "--status", "--database-url", db.url, "--migrations", folder])
            #expect(status.stdout.contains("changed"))
            #expect(status.status != 0)
        }
    }

    @Test func aDatabaseURLThatIsNeitherURLNorConninfoIsBadInput() async throws {
        let run = try await runCLI(["migrate", "--database-url", "not a url at all", "--migrations", PackagePaths.migrations])
        #expect(run.status == 2)
        #expect(run.stderr == "flexcharge-outbox: the database URL must be a postgresql:// URL or a key=value conninfo string\n")
    }

    @Test(arguments: [
        ("postgresql://u@127.0.0.1:notaport/db", "invalid integer value \"notaport\""),
        ("postgresql://flexcharge:wrong-password-xyz@127.0.0.1:PORT/flexcharge", "password authentication failed"),
        ("postgresql://nobody@127.0.0.1:UNUSED/db", "Connection refused"),
    ])
    func badConnectionSettingsGiveOneClearLine(url: String, expected: String) async throws {
        let server = try await TestServerURL.adminURL()
        let port = URLComponents(string: server)?.port.map(String.init) ?? "5432"
        let resolved = url.replacingOccurrences(of: "UNUSED", with: String(try freeTCPPort()))
            .replacingOccurrences(of: "PORT", with: port)
        let run = try await runCLI(["migrate", "--status", "--database-url", resolved, "--migrations", PackagePaths.migrations])
        #expect(run.status == 1)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(run.stderr)")
        #expect(run.stderr.hasPrefix("flexcharge-outbox: cannot connect to PostgreSQL"))
        #expect(run.stderr.contains(expected), "\(run.stderr)")
        #expect(!run.stderr.contains("wrong-password-xyz"))
        #expect(!run.stderr.contains("Fatal error"))
    }
}
