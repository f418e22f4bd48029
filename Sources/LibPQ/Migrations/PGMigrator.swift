import Foundation

/// Applies numbered SQL files in order, once each, and refuses to go on when an applied file was
/// edited afterwards.
///
/// Many worker processes may start at once and all run `migrate`: a session-level advisory lock
/// makes them take turns, and each one that gets the lock finds nothing left to do. The lock lives
/// on the session's connection, so the session is pinned to it (``PGSession/pin(reason:)``): a
/// lost connection fails the run rather than letting it continue unlocked on a new one. Each file runs
/// in its own transaction together with the row that records it, so a file is either applied and
/// recorded, or neither.
public struct PGMigrator: Sendable {
    /// The state of one migration file against one database.
    public enum State: String, Sendable {
        case applied, pending
        /// Applied, but the file's text has changed since.
        case changed
        /// Recorded as applied, but no such file exists here.
        case unknown
    }

    /// One line of `migrate --status`.
    public struct Status: Sendable {
        public let version: Int
        public let name: String
        public let state: State
        public let appliedAt: Date?
    }

    /// The schema holding the bookkeeping table `schema_migrations`.
    let schema: String
    let migrations: [Migration]

    public init(migrations: [Migration], schema: String = "flexcharge") {
        self.migrations = migrations
        self.schema = schema
    }

    /// Applies every pending migration; returns the ones this call applied.
    public func migrate(on session: PGSession) async throws -> [Migration] {
        try await withLock(on: session) {
            try await createBookkeeping(on: session)
            let status = try await self.status(on: session)
            if let changed = status.first(where: { $0.state == .changed }) {
                let file = migrations.first { $0.version == changed.version }?.fileName ?? "\(changed.version)"
                throw PGError(
                    .usage,
                    "migration \(file) was changed after it was applied; restore the applied text and put the change in a new file")
            }
            if let unknown = status.first(where: { $0.state == .unknown }) {
                throw PGError(
                    .usage,
                    "the database has migration \(unknown.version) (\(unknown.name)) that this build does not know; run a newer flexcharge-outbox")
            }
            var applied: [Migration] = []
            for line in status where line.state == .pending {
                guard let migration = migrations.first(where: { $0.version == line.version }) else { continue }
                try await apply(migration, on: session)
                applied.append(migration)
            }
            return applied
        }
    }

    /// Compares the files with what the database recorded.
    public func status(on session: PGSession) async throws -> [Status] {
        let exists = try await session.query("SELECT to_regclass($1) IS NOT NULL AS present", ["\(schema).schema_migrations"])
        guard try exists.first?.decode("present", as: Bool.self) == true else {
            return migrations.map { Status(version: $0.version, name: $0.name, state: .pending, appliedAt: nil) }
        }
        // Checksums are computed by the server (sha256 of the file text) so both sides agree.
        let recorded = try await session.query(
            "SELECT version, name, checksum, applied_at FROM \(table) ORDER BY version")
        var byVersion: [Int: (name: String, checksum: String, appliedAt: Date)] = [:]
        for row in recorded.rows {
            byVersion[try row.decode("version")] = (
                try row.decode("name"), try row.decode("checksum"), try row.decode("applied_at")
            )
        }
        var lines: [Status] = []
        for migration in migrations {
            if let record = byVersion.removeValue(forKey: migration.version) {
                let same = try await checksum(of: migration, on: session) == record.checksum
                lines.append(
                    Status(
                        version: migration.version, name: migration.name, state: same ? .applied : .changed,
                        appliedAt: record.appliedAt))
            } else {
                lines.append(Status(version: migration.version, name: migration.name, state: .pending, appliedAt: nil))
            }
        }
        for (version, record) in byVersion {
            lines.append(Status(version: version, name: record.name, state: .unknown, appliedAt: record.appliedAt))
        }
        return lines.sorted { $0.version < $1.version }
    }

    private var table: String { "\(quotedIdentifier(schema)).schema_migrations" }

    /// Key of the advisory lock that serialises concurrent `migrate` runs.
    private var lockKey: String { "\(schema).migrate" }

    /// Runs `body` holding the session-level advisory lock. The session is pinned meanwhile: if its
    /// connection drops (server restart, `pg_terminate_backend`), the lock is gone with it, so the
    /// next statement fails instead of reconnecting and going on unlocked. The session's statement
    /// timeout is lifted meanwhile (waiting for another migrator's lock and DDL on big tables may
    /// take long; the connection's keepalives still catch a dead network), unless the user set one.
    private func withLock<T: Sendable>(on session: PGSession, _ body: () async throws -> T) async throws -> T {
        try await session.pin(reason: "held the migration advisory lock, which the lost connection released")
        let timeout = await session.statementTimeout
        do {
            try await session.setStatementTimeout(nil)
            // Blocks this session's thread until the other migrators finish: exactly what we want.
            try await session.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey])
            let value = try await body()
            try await session.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey])
            await session.unpin()
            try? await session.setStatementTimeout(timeout)
            return value
        } catch {
            _ = try? await session.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey])
            await session.unpin()
            try? await session.setStatementTimeout(timeout)
            throw error
        }
    }

    /// Creates the schema and the bookkeeping table; runs under the migration lock.
    private func createBookkeeping(on session: PGSession) async throws {
        try await session.executeScript(
            """
            CREATE SCHEMA IF NOT EXISTS \(quotedIdentifier(schema));
            CREATE TABLE IF NOT EXISTS \(table) (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,          -- sha256 of the file text, hex
                applied_at  timestamptz NOT NULL DEFAULT now(),
                applied_by  text NOT NULL DEFAULT current_user,
                duration_ms integer NOT NULL
            );
            COMMENT ON TABLE \(table) IS 'Migration files applied by flexcharge-outbox migrate; never edit an applied file.';
            """)
    }

    private func checksum(of migration: Migration, on session: PGSession) async throws -> String {
        try await session.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS sum", [migration.sql])
            .first!.decode("sum")
    }

    private func apply(_ migration: Migration, on session: PGSession) async throws {
        let started = Date()
        let sql = migration.sql
        let record = "INSERT INTO \(table) (version, name, checksum, duration_ms) VALUES ($1, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4)"
        try await session.withTransaction { tx in
            try tx.executeScript(sql)
            try tx.execute(
                record,
                [migration.version, migration.name, sql, Int(Date().timeIntervalSince(started) * 1000)])
        }
    }
}
