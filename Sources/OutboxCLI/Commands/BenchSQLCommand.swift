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
            Marks every pending event succeeded without calling FlexCharge, so it refuses to run \
            unless given --throwaway-database-marks-every-pending-event-succeeded AND run on a \
            database its owner marked as a throwaway benchmark database, with nothing routed to \
            FlexCharge production and no production credentials. scripts/bench runs it on its own \
            cluster to measure the database ceiling next to the real drain.

            Example:
              psql -c "ALTER DATABASE bench SET flexcharge.benchmark_database = 'throwaway'"
              flexcharge-outbox bench-sql --throwaway-database-marks-every-pending-event-succeeded \
                  --database-url postgresql://bench@127.0.0.1/bench
            """,
        shouldDisplay: false
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events per claim.") var batchSize = 64
    @Option(help: "Simulated API latency in milliseconds: each claimed event answers after it, at most --concurrency at a time, claimed as the worker claims (0: claim back to back, the database ceiling).")
    var latencyMs = 0
    @Option(help: "Calls in flight with --latency-ms.") var concurrency = 64
    @Flag(help: .hidden) var throwawayDatabaseMarksEveryPendingEventSucceeded = false

    func run() async throws {
        guard throwawayDatabaseMarksEveryPendingEventSucceeded else {
            throw CLIFailure.badInput(
                "bench-sql marks every pending event succeeded without calling FlexCharge; it runs only with "
                    + "--throwaway-database-marks-every-pending-event-succeeded on a database marked as a throwaway benchmark database")
        }
        let result: (events: Int, seconds: Double)
        do {
            result = try await SQLDrainBenchmark.run(
                database: database.configuration, batchSize: batchSize, latency: .milliseconds(latencyMs),
                concurrency: concurrency, logger: Logger(label: "bench"))
        } catch let refusal as SQLDrainBenchmark.Refusal {
            throw CLIFailure.badInput(refusal.description)
        }
        print("drained \(result.events) events in \(String(format: "%.3f", result.seconds)) s: \(Int(Double(result.events) / max(result.seconds, 1e-9))) events/s")
    }
}
