import ArgumentParser
import Foundation
import LibPQ

/// `flexcharge-outbox migrate [--status]`.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the flexcharge schema from the numbered SQL files built into this binary.",
        discussion: """
            Applies each pending file in order, each in its own transaction, and records its \
            version and checksum in flexcharge.schema_migrations. Safe when many workers start at \
            once: they take turns on an advisory lock. Refuses to run when an applied file was \
            edited afterwards (put changes in a new file instead). The files are those of \
            migrations/ when the binary was built; --migrations DIR (or FLEXCHARGE_MIGRATIONS) \
            reads a folder instead, for development.

            Examples:
              flexcharge-outbox migrate
              flexcharge-outbox migrate --status
              flexcharge-outbox migrate --database-url postgresql://app@db/gateway
              flexcharge-outbox migrate --migrations ./migrations   # a checkout's files, for development
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "List applied and pending files; change nothing.")
    var status = false

    @Option(help: ArgumentHelp("Folder of NNNN_name.sql files to apply instead of the built-in ones (development).", valueName: "dir"))
    var migrations: String?

    func run() async throws {
        let files = try MigrationsLocation.load(migrations)
        let migrator = PGMigrator(migrations: files)
        try await database.withSession { session in
            if status {
                let lines = try await migrator.status(on: session)
                for line in lines {
                    let when = line.appliedAt.map { " \(ISO8601DateFormatter().string(from: $0))" } ?? ""
                    print("\(String(format: "%04d", line.version))  \(line.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(line.state.rawValue)\(when)")
                }
                let pending = lines.filter { $0.state == .pending }.count
                print("\(lines.count - pending) applied, \(pending) pending")
                if lines.contains(where: { $0.state == .changed || $0.state == .unknown }) {
                    throw CLIFailure.failed("the database and the migration files disagree (see above)")
                }
            } else {
                let applied = try await migrator.migrate(on: session)
                for migration in applied { print("applied \(migration.fileName)") }
                print(applied.isEmpty ? "schema is up to date" : "\(applied.count) migration(s) applied")
            }
        }
    }
}
