import Foundation

/// Where and how to connect.
///
/// The URL is a libpq conninfo string (`host=... dbname=...`) or URI (`postgresql://...`).
/// When none is given, libpq's own environment variables (`PGHOST`, `PGPORT`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, ...), `~/.pgpass` and `PGSERVICE` apply, as for `psql`.
public struct PGConfiguration: Sendable {
    /// The conninfo string or URI; empty means "libpq defaults and PG* variables".
    public var conninfo: String
    /// Shown in `pg_stat_activity.application_name`.
    public var applicationName: String

    public init(url: String?, applicationName: String = "flexcharge-outbox") {
        self.conninfo = url ?? ""
        self.applicationName = applicationName
    }

    /// Refuses text that is neither a `postgresql://` URL nor a `key=value` conninfo (libpq
    /// would take such text for a database name and fail later with a confusing message).
    public func validate() throws(PGError) {
        let text = conninfo.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return }
        if text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") || text.contains("=") { return }
        throw PGError(.usage, "the database URL must be a postgresql:// URL or a key=value conninfo string")
    }

    /// `--database-url` if given, else `DATABASE_URL`, else libpq's `PG*` variables.
    public static func resolve(
        databaseURL: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        applicationName: String = "flexcharge-outbox"
    ) -> PGConfiguration {
        let url = databaseURL.flatMap { $0.isEmpty ? nil : $0 } ?? environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        return PGConfiguration(url: url, applicationName: applicationName)
    }
}
