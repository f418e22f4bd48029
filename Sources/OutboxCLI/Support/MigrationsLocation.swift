import Foundation

/// Where the SQL migration files are: `--migrations`, else `$FLEXCHARGE_MIGRATIONS`, else
/// `./migrations`, else next to the installed binary (`../share/flexcharge-outbox/migrations`).
enum MigrationsLocation {
    static func resolve(_ explicit: String?) throws -> String {
        if let explicit { return explicit }
        if let fromEnvironment = ProcessInfo.processInfo.environment["FLEXCHARGE_MIGRATIONS"] { return fromEnvironment }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            FileManager.default.currentDirectoryPath + "/migrations",
            executable.appendingPathComponent("../share/flexcharge-outbox/migrations").standardized.path,
            executable.appendingPathComponent("migrations").path,
        ]
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/0001_foundation.sql") {
            return candidate
        }
        throw CLIFailure.badInput(
            "cannot find the migrations folder; pass --migrations DIR or set FLEXCHARGE_MIGRATIONS")
    }
}
