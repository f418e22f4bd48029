import CLibPQ
import Foundation

/// Where and how to connect.
///
/// The URL is a libpq conninfo string (`host=... dbname=...`) or URI (`postgresql://...`).
/// When none is given, libpq's own environment variables (`PGHOST`, `PGPORT`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, ...), `~/.pgpass` and `PGSERVICE` apply, as for `psql`.
///
/// Every connection gets the liveness settings of ``connectionDefaults`` (TCP keepalives, a TCP
/// user timeout, a connect timeout) and the session's ``statementTimeout``, unless the URL, the
/// conninfo or a `PG*` variable sets the parameter itself: what the user wrote always wins.
public struct PGConfiguration: Sendable {
    /// The conninfo string or URI; empty means "libpq defaults and PG* variables".
    var conninfo: String
    /// Shown in `pg_stat_activity.application_name`.
    var applicationName: String
    /// The server-side `statement_timeout` of every session (nil: none), set when the session
    /// connects unless the user set `statement_timeout` (URL `options=-c statement_timeout=...`,
    /// `PGOPTIONS`, `ALTER ROLE/DATABASE ... SET`). A statement whose answer is overdue by
    /// ``cancelGrace`` more than the effective timeout is given up on the client side: the server
    /// is not answering at all (stopped, or the network is gone).
    public var statementTimeout: Duration?

    /// The statement timeout when none is configured: long enough for operators' reports, short
    /// enough that nothing waits for ever. The worker uses its own, shorter one.
    public static let defaultStatementTimeout: Duration = .seconds(60)

    /// How long the client waits past a statement's deadline (or its task's cancellation) for the
    /// server to answer a cancel request before it closes the connection.
    static let cancelGrace: Duration = .seconds(2)

    /// The one home of the connection defaults: libpq parameters applied to every connection unless
    /// the user's conninfo/URL or the parameter's `PG*` environment variable sets them. With them a
    /// connection to a host that vanished (network gone, host down) fails within about 9 s even when
    /// idle, and connecting gives up after 5 s.
    ///
    /// - `connect_timeout=5`: seconds to establish a connection (libpq's default is none).
    /// - `keepalives=1`, `keepalives_idle=5`, `keepalives_interval=2`, `keepalives_count=2`: an idle
    ///   connection is probed after 5 s of silence and declared dead after 2 unanswered probes 2 s
    ///   apart (9 s).
    /// - `tcp_user_timeout=9000`: data sent but unacknowledged for 9 s breaks the connection.
    ///
    /// A server whose processes are stopped while its host stays up (SIGSTOP, a hung backend) still
    /// acknowledges TCP: only the client-side statement deadline and the worker's readiness probe
    /// notice that.
    static let connectionDefaults: [(keyword: String, value: String)] = [
        ("connect_timeout", "5"),
        ("keepalives", "1"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "2"),
        ("keepalives_count", "2"),
        ("tcp_user_timeout", "9000"),
    ]

    public init(url: String?, applicationName: String = "flexcharge-outbox", statementTimeout: Duration? = defaultStatementTimeout) {
        self.conninfo = url ?? ""
        self.applicationName = applicationName
        self.statementTimeout = statementTimeout
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

    /// The keywords and values given to `PQconnectStartParams` (with `expand_dbname`): the defaults
    /// first, so that the user's conninfo, expanded at `dbname`, overrides them; a default whose
    /// environment variable is set is left out, so libpq takes the variable.
    func connectionParameters(environment: [String: String] = ProcessInfo.processInfo.environment) -> [(String, String)] {
        var parameters: [(String, String)] = []
        for (keyword, value) in Self.connectionDefaults {
            if let variable = Self.environmentVariables[keyword], let set = environment[variable], !set.isEmpty { continue }
            parameters.append((keyword, value))
        }
        parameters.append(("dbname", conninfo))
        parameters.append(("application_name", applicationName))
        return parameters
    }

    /// libpq's own table of which `PG*` variable stands for which keyword (`PQconndefaults`).
    private static let environmentVariables: [String: String] = {
        var table: [String: String] = [:]
        guard let defaults = PQconndefaults() else { return table }
        defer { PQconninfoFree(defaults) }
        var option = defaults
        while let keyword = option.pointee.keyword {
            if let variable = option.pointee.envvar { table[String(cString: keyword)] = String(cString: variable) }
            option += 1
        }
        return table
    }()
}
