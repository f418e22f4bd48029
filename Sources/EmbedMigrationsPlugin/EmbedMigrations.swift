import Foundation
import PackagePlugin

/// Build-tool plugin: compiles the package's `migrations/*.sql` into the target that applies it
/// (OutboxMigrations) as string literals, so `flexcharge-outbox migrate` needs no files at run time.
/// The folder is listed on every build, so a new migration file is picked up without any step.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let folder = context.package.directoryURL.appending(path: "migrations")
        let inputs = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrationFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) migration files",
                executable: try context.tool(named: "MigrationsEmbedder").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }
}
