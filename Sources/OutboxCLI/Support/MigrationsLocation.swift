import Foundation
import LibPQ
import OutboxMigrations

/// Which migrations `migrate` applies: the folder given with `--migrations DIR`, else
/// `$FLEXCHARGE_MIGRATIONS`, else the files built into this binary (migrations/ when it was
/// compiled), so the installed binary and the container image need no source tree. A folder is
/// for development: it must hold the same applied files, or `migrate` refuses (checksums).
enum MigrationsLocation {
    static func load(_ explicit: String?) throws -> [Migration] {
        let loaded: Result<[Migration], PGError>
        if let folder = explicit ?? ProcessInfo.processInfo.environment["FLEXCHARGE_MIGRATIONS"] {
            loaded = Result { () throws(PGError) in try Migration.load(directory: folder) }
        } else {
            loaded = Result { () throws(PGError) in try EmbeddedMigrations.all() }
        }
        switch loaded {
        case .success(let migrations): return migrations
        case .failure(let error): throw CLIFailure.badInput(error.message)
        }
    }
}
