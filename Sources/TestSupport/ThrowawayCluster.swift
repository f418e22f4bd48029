import Foundation
import LibPQ

/// A PostgreSQL cluster of its own, started with `scripts/pg-cluster.sh` in a temporary folder:
/// loopback only, owned by a non-root user, stopped when this process exits.
public final class ThrowawayCluster: Sendable {
    public let directory: String
    public let port: Int
    /// The `flexcharge` database of the cluster, as a libpq URL.
    public let url: String

    /// Creates and starts a cluster on a free port.
    public static func start(name: String = "cluster") async throws -> ThrowawayCluster {
        let directory = NSTemporaryDirectory() + "flexcharge-\(name)-\(UUID().uuidString.prefix(8))"
        let port = try freeTCPPort()
        let output = try await runScript(["start", directory, String(port), String(getpid())])
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("DATABASE_URL=") }) else {
            throw TestSupportError("pg-cluster.sh printed no DATABASE_URL: \(output)")
        }
        return ThrowawayCluster(directory: directory, port: port, url: String(line.dropFirst("DATABASE_URL=".count)))
    }

    private init(directory: String, port: Int, url: String) {
        self.directory = directory
        self.port = port
        self.url = url
    }

    /// Restarts the server: every client connection is closed by the server.
    public func restart() async throws { _ = try await Self.runScript(["restart", directory]) }

    public func stop() async throws { _ = try await Self.runScript(["stop", directory]) }

    static func runScript(_ arguments: [String]) async throws -> String {
        try await runProcess("/bin/bash", [PackagePaths.root + "/scripts/pg-cluster.sh"] + arguments)
    }
}

/// Runs a program to completion; throws with its output when it fails.
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> String {
    let result = await try ChildProcess(executable, arguments, environment: environment).wait()
    guard result.status == 0 else {
        throw TestSupportError("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stdout)\(result.stderr)")
    }
    return result.stdout
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension ThrowawayCluster {
    /// The postmaster and every process it started (backends, checkpointer, walwriter, ...).
    public func serverProcesses() throws -> [pid_t] {
        let pidFile = try String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8)
        guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ pid_t($0) }) else {
            throw TestSupportError("no postmaster pid in \(directory)/data/postmaster.pid")
        }
        var processes = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after "(comm)": state, ppid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == postmaster { processes.append(pid) }
        }
        return processes
    }

    /// Stops (SIGSTOP) the postmaster and all its processes: the host stays up and keeps answering
    /// TCP, the database answers nothing. Only for a cluster of the test's own. Returns how many
    /// processes were stopped.
    @discardableResult
    public func freeze() throws -> Int {
        let processes = try serverProcesses()
        // The postmaster first, so it starts no new backend meanwhile; then the rest.
        for pid in processes { kill(pid, SIGSTOP) }
        // Backends forked in between: stop them too.
        let again = try serverProcesses().filter { !processes.contains($0) }
        for pid in again { kill(pid, SIGSTOP) }
        return processes.count + again.count
    }

    /// Resumes (SIGCONT) what ``freeze()`` stopped.
    public func thaw() throws {
        for pid in try serverProcesses() { kill(pid, SIGCONT) }
    }

    /// Migrates the cluster's `flexcharge` database with `migrations/` and returns it.
    public func migratedDatabase() async throws -> TestDatabase {
        let session = PGSession(configuration: PGConfiguration(url: url), name: "cluster-migrate")
        do {
            _ = try await PGMigrator(migrations: try Migration.load(directory: PackagePaths.migrations)).migrate(on: session)
        } catch {
            await session.close()
            throw error
        }
        await session.close()
        return TestDatabase(name: "flexcharge", url: url)
    }
}
