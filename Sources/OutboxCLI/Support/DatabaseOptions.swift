import ArgumentParser
import LibPQ

/// `--database-url`, shared by every command that talks to PostgreSQL.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "libpq conninfo or URL, e.g. postgresql://user:pass@host:5432/db. Default: $DATABASE_URL, else libpq's PG* variables.",
            valueName: "url"))
    var databaseURL: String?

    var configuration: PGConfiguration { PGConfiguration.resolve(databaseURL: databaseURL) }

    /// Opens one session and fails with one clear line when the database cannot be reached.
    func connect(name: String = "cli") async throws -> PGSession {
        do {
            try configuration.validate()
        } catch {
            throw CLIFailure.badInput(error.message)
        }
        let session = PGSession(configuration: configuration, name: name)
        do {
            try await session.connect()
        } catch {
            await session.close()
            throw CLIFailure.database(error)
        }
        return session
    }

    /// Runs `body` with a connected session, closing it afterwards and turning database errors
    /// into one-line failures.
    func withSession<T>(_ body: (PGSession) async throws -> T) async throws -> T {
        let session = try await connect()
        do {
            let value = try await body(session)
            await session.close()
            return value
        } catch let failure as CLIFailure {
            await session.close()
            throw failure
        } catch {
            await session.close()
            throw CLIFailure.database(error)
        }
    }
}
