import Foundation
import LibPQ
import OutboxMigrations
import Testing
import TestSupport

/// `migrate` carries its SQL: the files of migrations/ are compiled into the binary, so it works
/// from any directory and from a container image without the source tree.
@Suite struct EmbeddedMigrationsTests {
    @Test func theBuiltInFilesAreExactlyThoseOfTheMigrationsFolder() throws {
        let folder = try Migration.load(directory: PackagePaths.migrations)
        let embedded = try EmbeddedMigrations.all()
        #expect(embedded.map(\.fileName) == folder.map(\.fileName))
        // Byte for byte: the checksum recorded at a partner must not depend on where the SQL came from.
        for (built, file) in zip(embedded, folder) {
            #expect(Array(built.sql.utf8) == Array(file.sql.utf8), "\(file.fileName)")
        }
        #expect(embedded.count >= 16)
    }

    @Test func aCopyOfTheBinaryMigratesAFreshDatabaseFromAnEmptyDirectory() async throws {
        try await TestDatabase.withEmpty { db in
            // Only the binary, in a folder of its own, run from there: no migrations/ anywhere near it.
            let folder = NSTemporaryDirectory() + "flexcharge-bin-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let binary = folder + "/flexcharge-outbox"
            try FileManager.default.copyItem(atPath: PackagePaths.executable("flexcharge-outbox"), toPath: binary)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)

            let migrate = try await runInFolder(folder, binary, ["migrate", "--database-url", db.url])
            #expect(migrate.status == 0, "\(migrate.stderr)")
            let files = try Migration.load(directory: PackagePaths.migrations)
            #expect(migrate.stdout.contains("\(files.count) migration(s) applied"), "\(migrate.stdout)")

            let session = db.session()
            let recorded = try await session.query("SELECT version FROM flexcharge.schema_migrations ORDER BY version")
            #expect(try recorded.rows.map { try $0.decode("version", as: Int.self) } == files.map(\.version))
            await session.close()

            // The checksums recorded from the built-in files are those of the folder's files.
            let status = try await runCLI(["migrate", "--status", "--database-url", db.url, "--migrations", PackagePaths.migrations])
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains("\(files.count) applied, 0 pending"))
            let again = try await runInFolder(folder, binary, ["migrate", "--database-url", db.url])
            #expect(again.stdout.contains("schema is up to date"), "\(again.stdout) \(again.stderr)")
        }
    }

    @Test func aMissingDevelopmentFolderIsBadInput() async throws {
        let run = try await runCLI(["migrate", "--status", "--database-url", "postgresql://nobody@127.0.0.1:1/db",
                                    "--migrations", "/nonexistent/migrations"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("cannot read the migrations folder /nonexistent/migrations"))
    }

    /// Runs `binary arguments` with `folder` as its working directory and no FLEXCHARGE_MIGRATIONS.
    private func runInFolder(_ folder: String, _ binary: String, _ arguments: [String]) async throws -> ProcessResult {
        let environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("PG") && $0.key != "DATABASE_URL" && $0.key != "FLEXCHARGE_MIGRATIONS"
        }
        return try await ChildProcess("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", folder, binary] + arguments,
                                      environment: environment).wait()
    }
}
