import Foundation

/// Runs the built `flexcharge-outbox` binary with arguments and optional stdin, in an environment
/// without DATABASE_URL / PG* unless given, so each test chooses what the tool sees.
public func runCLI(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> ProcessResult {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") && $0.key != "DATABASE_URL" }
    env.merge(environment) { $1 }
    return await try ChildProcess(PackagePaths.executable("flexcharge-outbox"), arguments, environment: env, stdin: stdin).wait()
}
