import Foundation
import LibPQ

/// A fresh database for one test, copied from a migrated template, dropped afterwards.
///
/// The server is `DATABASE_URL` when set (CI starts one), else a ``ThrowawayCluster`` started
/// once per test process.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    public var configuration: PGConfiguration { PGConfiguration(url: url, applicationName: "flexcharge-tests") }

    /// Runs `body` with a new, migrated database.
    public static func with<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        let server = try await TestServer.shared.adminURL()
        let template = try await TestServer.shared.template()
        let name = "fc_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = PGSession(configuration: PGConfiguration(url: server), name: "test-admin")
        try await admin.execute("CREATE DATABASE \(quotedIdentifier(name)) TEMPLATE \(quotedIdentifier(template))")
        let database = TestDatabase(name: name, url: replacingDatabase(in: server, with: name))
        do {
            let value = try await body(database)
            try? await admin.execute("DROP DATABASE IF EXISTS \(quotedIdentifier(name)) WITH (FORCE)")
            await admin.close()
            return value
        } catch {
            try? await admin.execute("DROP DATABASE IF EXISTS \(quotedIdentifier(name)) WITH (FORCE)")
            await admin.close()
            throw error
        }
    }

    /// An empty database (not migrated), for migration tests.
    public static func withEmpty<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        let server = try await TestServer.shared.adminURL()
        let name = "fc_empty_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = PGSession(configuration: PGConfiguration(url: server), name: "test-admin")
        try await admin.execute("CREATE DATABASE \(quotedIdentifier(name))")
        defer { Task { try? await admin.execute("DROP DATABASE IF EXISTS \(quotedIdentifier(name)) WITH (FORCE)"); await admin.close() } }
        return try await body(TestDatabase(name: name, url: replacingDatabase(in: server, with: name)))
    }

    /// Opens a session on this database (close it when done).
    public func session(_ name: String = "test") -> PGSession { PGSession(configuration: configuration, name: name) }
}

/// The server the tests use, and the migrated template database on it. Each is set up once per
/// test process; concurrent first callers share the same setup task (actor methods re-enter at
/// every `await`, so a plain "if nil, create" would start several).
actor TestServer {
    static let shared = TestServer()
    private var server: Task<String, any Error>?
    private var templateTask: Task<String, any Error>?

    func adminURL() async throws -> String {
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty { return url }
        if server == nil { server = Task { try await ThrowawayCluster.start(name: "tests").url } }
        return try await server!.value
    }

    func template() async throws -> String {
        if templateTask == nil {
            let server = try await adminURL()
            templateTask = Task { try await Self.createTemplate(on: server) }
        }
        return try await templateTask!.value
    }

    /// Creates (once per server and migration set) a database with every migration applied.
    private static func createTemplate(on server: String) async throws -> String {
        let migrations = try Migration.load(directory: PackagePaths.migrations)
        // A stable name per migration set (FNV-1a of the texts): reused across runs until a file changes.
        let digest = migrations.map(\.sql).joined().utf8.reduce(UInt64(14_695_981_039_346_656_037)) {
            ($0 ^ UInt64($1)) &* 1_099_511_628_211
        }
        let name = "fc_template_\(String(digest, radix: 16))"
        let admin = PGSession(configuration: PGConfiguration(url: server), name: "test-template")
        try await admin.query("SELECT pg_advisory_lock(hashtext($1))", [name])
        let exists = try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rows.count == 1
        if !exists {
            let building = name + "_building"
            try await admin.execute("DROP DATABASE IF EXISTS \(quotedIdentifier(building)) WITH (FORCE)")
            try await admin.execute("CREATE DATABASE \(quotedIdentifier(building))")
            let session = PGSession(configuration: PGConfiguration(url: replacingDatabase(in: server, with: building)))
            _ = try await PGMigrator(migrations: migrations).migrate(on: session)
            await session.close()
            try await admin.execute("ALTER DATABASE \(quotedIdentifier(building)) RENAME TO \(quotedIdentifier(name))")
        }
        try await admin.query("SELECT pg_advisory_unlock(hashtext($1))", [name])
        await admin.close()
        return name
    }
}

/// The same server URL pointing at another database.
public func replacingDatabase(in url: String, with database: String) -> String {
    if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), var components = URLComponents(string: url) {
        components.path = "/" + database
        return components.string ?? url
    }
    return url + " dbname=\(database)"
}

/// The URL of the server the tests use (for tests that build their own URLs).
public enum TestServerURL {
    public static func adminURL() async throws -> String { try await TestServer.shared.adminURL() }
}
