import Foundation
import LibPQ
import Logging
import Testing
import TestSupport
@testable import OutboxEngine

/// The worker's outcome writer (``CompletionWriter``): batching, `finish(within:)`, what it reports
/// unwritten, and cancellation. Writes go to a real test database; "the database is away" is a
/// session to a port nobody listens on.
@Suite(.timeLimit(.minutes(2))) struct CompletionWriterTests {
    static let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A session whose every statement fails at once (connection refused).
    static func unreachable() -> PGSession {
        PGSession(configuration: PGConfiguration(url: "postgresql://flexcharge@127.0.0.1:1/flexcharge"), name: "unreachable")
    }

    static func succeeded(_ id: Int64) -> Completion {
        Completion(eventID: id, attempt: 1, action: .send, environment: "sandbox", startedAt: Date(), finishedAt: Date(),
                   httpStatus: 200, outcome: .succeeded, transactionKey: "tx-\(id)")
    }

    /// `count` transmits claimed by `worker` in a fresh database.
    static func claimed(_ count: Int, by worker: String, on session: PGSession) async throws -> [Int64] {
        try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'sandbox')")
        let orders = (1...count).map { "w-\($0)" }
        try await session.execute(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
            SELECT 'transmit', 'm1', o, 'cit', 'website', 'https://shop.example', p::jsonb FROM unnest($1::text[], $2::text[]) AS e(o, p)
            """, [orders, orders.map { SamplePayloads.transmit(orderID: $0, amountCents: 900, declined: false) }])
        let events = try await OutboxStore().claim(
            on: session, worker: worker, total: count, laneCaps: [count, count, count, count], lease: .seconds(60))
        try #require(events.count == count)
        return events.map(\.id)
    }

    /// A writer on its own session to a fresh database holding `count` events claimed by its worker.
    static func withClaimed(
        _ count: Int, batching: CompletionWriter.Batching = .init(),
        _ body: (_ session: PGSession, _ writer: CompletionWriter, _ ids: [Int64]) async throws -> Void
    ) async throws {
        try await TestDatabase.with { db in
            let session = db.session(), writerSession = db.session("writer")
            defer { Task { await session.close(); await writerSession.close() } }
            let ids = try await claimed(count, by: "w1", on: session)
            try await body(session, CompletionWriter(session: writerSession, worker: "w1", logger: silent, batching: batching), ids)
        }
    }

    /// Outcomes written so far, and in how many transactions (one per batch).
    static func written(on session: PGSession) async throws -> (outcomes: Int, transactions: Int) {
        let row = try #require(try await session.query(
            "SELECT count(*) AS n, count(DISTINCT xmin::text) AS transactions FROM flexcharge.attempts WHERE action = 'send'").first)
        return (try row.decode("n", as: Int.self), try row.decode("transactions", as: Int.self))
    }

    /// Polls until `count` outcomes are written (a generous bound for "promptly" under load).
    static func eventuallyWritten(_ count: Int, on session: PGSession, within limit: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while (try? await written(on: session).outcomes) != count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// A window nobody waits out in a test: what is written was written for another reason.
    static let never: Duration = .seconds(3600)

    @Test func everythingSubmittedBeforeAFlushIsWrittenInOneTransaction() async throws {
        try await Self.withClaimed(100) { session, writer, ids in
            for id in ids { writer.submit(Self.succeeded(id), lane: .transmit) }
            #expect(Set(writer.unwritten(olderThan: .zero)) == Set(ids))

            let running = Task { await writer.run() }
            await writer.finish(within: .seconds(30))
            #expect(await result(of: running) != nil, "run() did not end after finish")
            #expect(writer.unwritten(olderThan: .zero).isEmpty)

            let row = try #require(try await session.query(
                """
                SELECT count(*) AS n, count(DISTINCT xmin::text) AS transactions,
                       (SELECT count(*) FROM flexcharge.outbox WHERE state = 'succeeded') AS succeeded
                  FROM flexcharge.attempts WHERE action = 'send'
                """).first)
            #expect(try row.decode("n", as: Int.self) == 100)
            #expect(try row.decode("succeeded", as: Int.self) == 100)
            #expect(try row.decode("transactions", as: Int.self) == 1, "100 outcomes waiting were written in several transactions")
        }
    }

    @Test func completionsSubmittedWhileItRunsAreAllWritten() async throws {
        try await Self.withClaimed(30) { session, writer, ids in
            let running = Task { await writer.run() }
            for id in ids {
                writer.submit(Self.succeeded(id), lane: .transmit)
                if id % 7 == 0 { try await Task.sleep(for: .milliseconds(15)) }  // across several gather windows
            }
            await writer.finish(within: .seconds(30))
            #expect(await result(of: running) != nil)
            let written = try await session.query("SELECT count(*) AS n FROM flexcharge.outbox WHERE state = 'succeeded'").first
            #expect(try written?.decode("n", as: Int.self) == 30)
            #expect(writer.unwritten(olderThan: .zero).isEmpty)
        }
    }

    @Test func unwrittenListsOnlyOutcomesThatWaitedLongerThanTheAge() async throws {
        let writer = CompletionWriter(session: Self.unreachable(), worker: "w1", logger: Self.silent)
        writer.submit(Self.succeeded(1), lane: .transmit)
        writer.submit(Self.succeeded(2), lane: .transmit)
        #expect(Set(writer.unwritten(olderThan: .zero)) == [1, 2])
        #expect(writer.unwritten(olderThan: .seconds(3600)).isEmpty)
    }

    @Test func finishWithNothingToWriteReturnsAtOnce() async throws {
        let writer = CompletionWriter(session: Self.unreachable(), worker: "w1", logger: Self.silent)
        let running = Task { await writer.run() }
        let finished = Task { await writer.finish(within: .seconds(3600)) }
        #expect(await result(of: finished) != nil, "finish waited with nothing to write")
        #expect(await result(of: running) != nil, "run() did not end")
    }

    @Test func finishGivesUpAtItsDeadlineWhenTheDatabaseIsAwayAndTheOutcomesStayUnwritten() async throws {
        let writer = CompletionWriter(session: Self.unreachable(), worker: "w1", logger: Self.silent)
        let running = Task { await writer.run() }
        for id: Int64 in 1...3 { writer.submit(Self.succeeded(id), lane: .transmit) }
        let finished = Task { await writer.finish(within: .seconds(1)) }
        #expect(await result(of: finished, within: .seconds(15)) != nil, "finish(within: 1 s) did not return")
        #expect(await result(of: running, within: .seconds(15)) != nil, "run() kept retrying past the deadline")
        // Not written: their leases are left to expire, and the events are looked up before any resend.
        #expect(Set(writer.unwritten(olderThan: .zero)) == [1, 2, 3])
    }

    @Test func aCancelledIdleWriterStopsPromptlyAndIsReleased() async throws {
        weak var released: CompletionWriter?
        do {
            let writer = CompletionWriter(session: Self.unreachable(), worker: "w1", logger: Self.silent)
            released = writer
            let running = Task { await writer.run() }
            try await Task.sleep(for: .milliseconds(50))  // let it park (cancelling earlier is the other case)
            running.cancel()
            #expect(await result(of: running) != nil, "a cancelled writer with nothing to write kept waiting")
        }
        #expect(await eventually { released == nil }, "the writer was kept alive after its task ended")
    }

    @Test func aCancelledWriterRetryingAnUnreachableDatabaseStopsPromptly() async throws {
        let writer = CompletionWriter(session: Self.unreachable(), worker: "w1", logger: Self.silent)
        writer.submit(Self.succeeded(7), lane: .transmit)
        let running = Task { await writer.run() }
        try await Task.sleep(for: .milliseconds(300))  // a failed flush or two: it is in its retry pause
        running.cancel()
        #expect(await result(of: running) != nil, "a cancelled writer kept retrying")
        #expect(writer.unwritten(olderThan: .zero) == [7])
    }

    @Test func anOutcomeSomeoneWaitsForIsWrittenWithoutWaitingForTheLongWindowAndTakesTheGatheredAlong() async throws {
        try await Self.withClaimed(3, batching: .init(companyWindow: Self.never)) { session, writer, ids in
            let running = Task { await writer.run() }
            writer.submit(Self.succeeded(ids[0]), lane: .transmit)
            writer.submit(Self.succeeded(ids[1]), lane: .followUp)
            try await Task.sleep(for: .milliseconds(200))  // 20 short windows: nobody waits for these, so they wait on
            #expect(try await Self.written(on: session).outcomes == 0, "a transmit's outcome did not wait for company")

            writer.submit(Self.succeeded(ids[2]), lane: .citEvaluate)
            #expect(await Self.eventuallyWritten(3, on: session),
                    "a CIT evaluate's outcome waited for the long window")
            #expect(try await Self.written(on: session).transactions == 1, "the gathered outcomes were not written with it")
            running.cancel()
            _ = await result(of: running)
        }
    }

    @Test func anMITEvaluateIsWaitedForToo() async throws {
        try await Self.withClaimed(1, batching: .init(companyWindow: Self.never)) { session, writer, ids in
            let running = Task { await writer.run() }
            writer.submit(Self.succeeded(ids[0]), lane: .mitEvaluate)
            #expect(await Self.eventuallyWritten(1, on: session))
            running.cancel()
            _ = await result(of: running)
        }
    }

    @Test func outcomesNobodyWaitsForArrivingOverManyShortWindowsGoInOneBatch() async throws {
        try await Self.withClaimed(20, batching: .init(companyWindow: Self.never, fullBatch: 20)) { session, writer, ids in
            let running = Task { await writer.run() }
            for id in ids.dropLast() {
                writer.submit(Self.succeeded(id), lane: .transmit)
                try await Task.sleep(for: .milliseconds(15))  // longer than the short window each time
            }
            #expect(try await Self.written(on: session).outcomes == 0, "written before the batch was full")
            writer.submit(Self.succeeded(ids.last!), lane: .transmit)  // the 20th: a full batch is written at once
            #expect(await Self.eventuallyWritten(20, on: session))
            #expect(try await Self.written(on: session).transactions == 1, "outcomes gathered in the window went in several batches")
            running.cancel()
            _ = await result(of: running)
        }
    }

    @Test func outcomesNobodyWaitsForAreWrittenOnceTheirWindowPasses() async throws {
        try await Self.withClaimed(5, batching: .init(companyWindow: .milliseconds(300))) { session, writer, ids in
            let running = Task { await writer.run() }
            for id in ids { writer.submit(Self.succeeded(id), lane: .transmit) }
            #expect(await Self.eventuallyWritten(5, on: session),
                    "a batch short of full was never written")
            let written = try await Self.written(on: session)
            #expect(written.transactions == 1)
            #expect(writer.unwritten(olderThan: .zero).isEmpty)
            running.cancel()
            _ = await result(of: running)
        }
    }

    @Test func finishWritesWhatIsGatheredWithoutWaitingForTheWindow() async throws {
        try await Self.withClaimed(10, batching: .init(companyWindow: Self.never)) { session, writer, ids in
            let running = Task { await writer.run() }
            for id in ids { writer.submit(Self.succeeded(id), lane: .transmit) }
            let finished = Task { await writer.finish(within: .seconds(30)) }
            #expect(await result(of: finished, within: .seconds(60)) != nil, "finish waited for the window")
            #expect(await result(of: running) != nil, "run() did not end after finish")
            let written = try await Self.written(on: session)
            #expect(written.outcomes == 10)
            #expect(written.transactions == 1)
            #expect(writer.unwritten(olderThan: .zero).isEmpty)
        }
    }
}
