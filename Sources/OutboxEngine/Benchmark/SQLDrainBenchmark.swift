import Foundation
import LibPQ
import Logging

/// The database ceiling of the worker's hot path: the same claim and the same batched outcome
/// writes as ``OutboxWorker``, with no HTTP call in between (every claimed event "succeeds" at
/// once). Used by `scripts/bench` to compare the real drain rate with what PostgreSQL alone
/// allows on the same machine.
public enum SQLDrainBenchmark {
    /// Drains every pending event; returns the number drained and the seconds it took.
    public static func run(database: PGConfiguration, batchSize: Int = 64, logger: Logger) async throws -> (events: Int, seconds: Double) {
        let claimSession = PGSession(configuration: database, name: "bench-claim")
        let writerSession = PGSession(configuration: database, name: "bench-writer")
        let worker = "bench-sql-\(getpid())"
        let writer = CompletionWriter(session: writerSession, worker: worker, logger: logger)
        let store = OutboxStore()
        let started = ContinuousClock.now
        var drained = 0
        await withDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            while true {
                let events = (try? await store.claim(
                    on: claimSession, worker: worker, total: batchSize, laneCaps: Lane.claimCaps(total: batchSize, others: batchSize),
                    lease: .seconds(60))) ?? []
                if events.isEmpty { break }
                drained += events.count
                let now = Date()
                for event in events {
                    writer.submit(Completion(
                        eventID: event.id, attempt: event.attempt, action: .send, environment: event.environment,
                        startedAt: now, finishedAt: now, httpStatus: 200, outcome: .succeeded, transactionKey: "bench"))
                }
            }
            await writer.finish()
        }
        let elapsed = ContinuousClock.now - started
        await claimSession.close()
        await writerSession.close()
        return (drained, elapsed.seconds)
    }
}
