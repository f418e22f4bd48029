import Foundation
import LibPQ
import Logging

/// The database ceiling of the worker's hot path: the same claim and the same batched outcome
/// writes as ``OutboxWorker``, with no HTTP call in between (every claimed event "succeeds" at
/// once). Used by `scripts/bench` to compare the real drain rate with what PostgreSQL alone
/// allows on the same machine.
///
/// It marks every pending event succeeded without telling FlexCharge, so it runs only on a
/// database its owner marked as a throwaway benchmark database
/// (`ALTER DATABASE bench SET flexcharge.benchmark_database = 'throwaway'`) and where nothing is
/// routed to, or has credentials for, FlexCharge's production environment.
public enum SQLDrainBenchmark {
    /// The database setting (`ALTER DATABASE ... SET`) that allows the benchmark, and its value.
    static let markerSetting = "flexcharge.benchmark_database"
    static let markerValue = "throwaway"

    /// Why the benchmark refused to run on a database.
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Throws a ``Refusal`` unless the database is a marked throwaway one without production
    /// routes or credentials.
    static func checkThrowaway(on session: PGSession) async throws {
        let row = try await session.query("""
            SELECT current_database() AS name,
                   coalesce(current_setting($1, true), '') AS marker,
                   EXISTS (SELECT 1 FROM flexcharge.merchants
                            WHERE 'production' IN (cit_website, cit_call_center, mit))
                   OR EXISTS (SELECT 1 FROM flexcharge.merchant_sites
                               WHERE 'production' IN (cit_website, cit_call_center, mit))
                   OR EXISTS (SELECT 1 FROM flexcharge.merchant_credentials WHERE environment = 'production')
                                                    AS production
            """, [markerSetting]).first!
        let name = try row.decode("name", as: String.self)
        guard try row.decode("marker", as: String.self) == markerValue else {
            throw Refusal(description: """
                database \(name) is not marked as a throwaway benchmark database \
                (ALTER DATABASE \(name) SET \(markerSetting) = '\(markerValue)'); bench-sql marks every pending event succeeded
                """)
        }
        guard try !row.decode("production", as: Bool.self) else {
            throw Refusal(description: "database \(name) routes events to FlexCharge production or holds production credentials; bench-sql refuses it")
        }
    }

    /// Drains every pending event; returns the number drained and the seconds it took. Refuses
    /// (``Refusal``) a database that ``checkThrowaway(on:)`` does not accept.
    ///
    /// With `latency` zero, claims back to back (the database ceiling). With a `latency`, each claimed
    /// event "answers" after it (plus up to 20 %), at most `concurrency` at a time, and the loop claims as the worker does
    /// (once half the slots are free, ``WorkerConfiguration/claimThreshold``): the statements and batch
    /// sizes of a drain against an API answering in `latency`, without HTTP, so the database's cost
    /// per event at that latency can be measured alone.
    public static func run(
        database: PGConfiguration, batchSize: Int = 64, latency: Duration = .zero, concurrency: Int = 64, logger: Logger
    ) async throws -> (events: Int, seconds: Double) {
        let claimSession = PGSession(configuration: database, name: "bench-claim")
        do {
            try await checkThrowaway(on: claimSession)
        } catch {
            await claimSession.close()
            throw error
        }
        let writerSession = PGSession(configuration: database, name: "bench-writer")
        let worker = "bench-sql-\(getpid())"
        let writer = CompletionWriter(session: writerSession, worker: worker, logger: logger, batching: .init(fullBatch: batchSize))
        let store = OutboxStore()
        let started = ContinuousClock.now
        var drained = 0
        let threshold = max(1, min(batchSize, concurrency / 2))
        let (answered, answers) = AsyncStream<Int>.makeStream()
        await withDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            var inFlight = 0
            var answerIterator = answered.makeAsyncIterator()
            while true {
                let total = latency == .zero ? batchSize : min(batchSize, concurrency - inFlight)
                let events = total <= 0 ? [] : (try? await store.claim(
                    on: claimSession, worker: worker, total: total, laneCaps: Lane.claimCaps(total: total, others: total),
                    lease: .seconds(60))) ?? []
                if events.isEmpty && inFlight == 0 { break }
                drained += events.count
                if latency == .zero {
                    submit(events, to: writer)
                    continue
                }
                inFlight += events.count
                // Each call answers on its own, within latency + 20 % (as real calls spread out), so slots
                // free a few at a time and claims and outcome batches take the sizes they take in a worker.
                for event in events {
                    let answersAfter = latency + latency * Double.random(in: 0...0.2)
                    group.addTask {
                        try? await Task.sleep(for: answersAfter)
                        submit([event], to: writer)
                        answers.yield(1)
                    }
                }
                // Claim again once `threshold` slots are free (or at once after a full batch, as the worker).
                if events.count == total && concurrency - inFlight >= threshold { continue }
                while inFlight > 0, let done = await answerIterator.next() {
                    inFlight -= done
                    if concurrency - inFlight >= threshold { break }
                }
            }
            answers.finish()
            await writer.finish()
        }
        let elapsed = ContinuousClock.now - started
        await claimSession.close()
        await writerSession.close()
        return (drained, elapsed.seconds)
    }

    /// Every claimed event "succeeds" now.
    private static func submit(_ events: [ClaimedEvent], to writer: CompletionWriter) {
        let now = Date()
        for event in events {
            writer.submit(Completion(
                eventID: event.id, attempt: event.attempt, action: .send, environment: event.environment,
                startedAt: now, finishedAt: now, httpStatus: 200, outcome: .succeeded, transactionKey: "bench"),
                lane: event.claimLane)
        }
    }
}
