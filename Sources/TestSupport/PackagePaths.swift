import Foundation

/// Paths of the package being tested.
public enum PackagePaths {
    /// The package root (the folder holding Package.swift).
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The `migrations/` folder.
    public static var migrations: String { root + "/migrations" }

    /// The folder holding the built executables (`flexcharge-outbox`, `flexcharge-sandbox`).
    public static var products: String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for candidate in [runner, root + "/.build/debug"]
        where FileManager.default.isExecutableFile(atPath: candidate + "/flexcharge-outbox") {
            return candidate
        }
        return root + "/.build/debug"
    }

    /// The path of a built executable.
    public static func executable(_ name: String) -> String { products + "/" + name }
}
