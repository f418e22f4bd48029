import ArgumentParser
import Foundation
import Logging
import OutboxEngine

/// `flexcharge-outbox bench-sql`: the database ceiling, for `scripts/bench`.
struct BenchSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sql",
        abstract: "Benchmark: drain every pending event with the worker's SQL alone (no HTTP), print events/s.",
        discussion: """
            Marks every pending event succeeded without calling FlexCharge: use it on a benchmark \
            database only. scripts/bench runs it to measure the database ceiling next to the real drain.

            Example:
              flexcharge-outbox bench-sql --database-url postgresql://bench@127.0.0.1/bench
            """,
        shouldDisplay: false
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events per claim.") var batchSize = 64

    func run() async throws {
        let result = try await SQLDrainBenchmark.run(
            database: database.configuration, batchSize: batchSize, logger: Logger(label: "bench"))
        print("drained \(result.events) events in \(String(format: "%.3f", result.seconds)) s: \(Int(Double(result.events) / max(result.seconds, 1e-9))) events/s")
    }
}
