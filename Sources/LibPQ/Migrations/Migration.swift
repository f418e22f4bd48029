import Foundation

/// One numbered SQL file of `migrations/`, e.g. `0003_outbox.sql` → version 3, name `outbox`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let fileName: String
    public let sql: String

    public init(version: Int, name: String, fileName: String, sql: String) {
        self.version = version
        self.name = name
        self.fileName = fileName
        self.sql = sql
    }

    /// Reads every `NNNN_name.sql` file of a folder, in version order. Refuses two files with
    /// the same version and files whose name does not follow the pattern.
    public static func load(directory: String) throws(PGError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PGError(.usage, "cannot read the migrations folder \(directory)")
        }
        var files: [(fileName: String, sql: String)] = []
        for fileName in names.sorted() where fileName.hasSuffix(".sql") {
            guard let data = FileManager.default.contents(atPath: directory + "/" + fileName),
                let sql = String(data: data, encoding: .utf8)
            else { throw PGError(.usage, "cannot read migration file \(fileName) as UTF-8") }
            files.append((fileName, sql))
        }
        return try parse(files: files)
    }

    /// Migrations from file names and texts (a folder's, or those built into the binary), in
    /// version order. Refuses two files with the same version and names not like NNNN_name.sql.
    public static func parse(files: [(fileName: String, sql: String)]) throws(PGError) -> [Migration] {
        var migrations: [Migration] = []
        for (fileName, sql) in files {
            let stem = fileName.dropLast(4)
            guard fileName.hasSuffix(".sql"), let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]) else {
                throw PGError(.usage, "migration file \(fileName) must be named NNNN_name.sql")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw PGError(.usage, "migration files \(clash.fileName) and \(fileName) share version \(version)")
            }
            migrations.append(
                Migration(version: version, name: String(stem[stem.index(after: underscore)...]), fileName: fileName, sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}
