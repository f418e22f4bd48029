import LibPQ
import Logging
import Synchronization

/// Writes completions in batches on its own connection.
///
/// After the first completion of a batch arrives, the writer gathers for `gatherWindow` (10 ms)
/// before it writes, unless a full batch is already waiting: each transaction costs PostgreSQL
/// about as much as several rows (a commit, index lookups), and at 50 ms calls completions arrive
/// a few at a time. Nothing waits on the write except the event's own row (its lease, and the
/// next event of the same order), so the window costs no throughput.
/// A failed flush (database restarting) keeps the batch and tries again, at least once a second,
/// and the worker keeps renewing the leases of outcomes that wait (``unwritten(olderThan:)``), so
/// a completion is not dropped while the process runs. If the lease was lost meanwhile, the
/// attempt is still recorded and the event is left to the worker that took it over (see
/// `OutboxStore.record`). At shutdown, ``finish(within:)`` gives up after its deadline, and a
/// cancelled task stops at once: what is left unwritten comes back when its lease expires, and is
/// looked up before it is sent again.
final class CompletionWriter: Sendable {
    private struct State {
        var buffer: [Completion] = []
        /// When each buffered or in-flight completion was submitted, by event id.
        var submitted: [Int64: ContinuousClock.Instant] = [:]
        /// After this instant (set by `finish(within:)`) a failed flush is not tried again.
        var giveUpAt: ContinuousClock.Instant?
        var wakeup: CheckedContinuation<Void, Never>?
        var finishing = false
        var flushing = false
        /// The caller of `finish(within:)`, resumed when everything is written or at its deadline.
        var finishWaiter: CheckedContinuation<Void, Never>?

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { finishWaiter = nil }
            return finishWaiter.map { [$0] } ?? []
        }
    }

    private let session: PGSession
    private let store = OutboxStore()
    private let worker: String
    private let logger: Logger
    private let gatherWindow: Duration
    private let fullBatch = 64
    /// A lock, not an actor: every finished call submits, and a hop would wait its turn on a busy
    /// event loop.
    private let state = Mutex(State())

    init(session: PGSession, worker: String, logger: Logger, gatherWindow: Duration = .milliseconds(10)) {
        self.session = session
        self.gatherWindow = gatherWindow
        self.worker = worker
        self.logger = logger
    }

    func submit(_ completion: Completion) {
        let now = ContinuousClock.now
        let wakeup = state.withLock { state in
            state.buffer.append(completion)
            state.submitted[completion.eventID] = now
            defer { state.wakeup = nil }
            return state.wakeup
        }
        wakeup?.resume()
    }

    /// Events whose outcome has waited longer than `age` to be written: their leases need renewing.
    func unwritten(olderThan age: Duration) -> [Int64] {
        let now = ContinuousClock.now
        return state.withLock { $0.submitted.filter { now - $0.value >= age }.map(\.key) }
    }

    /// Flushes what is buffered and returns once it is written, or at the latest after `limit`
    /// (a statement still waiting for a stopped database is then abandoned: the worker cancels the
    /// writer's task, and what is left comes back when its lease expires); `run()` then ends.
    func finish(within limit: Duration = .seconds(5)) async {
        let giveUpAt = ContinuousClock.now + limit
        let timer = Task { [self] in
            try? await Task.sleep(until: giveUpAt, clock: .continuous)
            let waiter = self.state.withLock { state in
                defer { state.finishWaiter = nil }
                return state.finishWaiter
            }
            waiter?.resume()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let (wakeup, done) = state.withLock { state in
                state.finishing = true
                state.giveUpAt = giveUpAt
                defer { state.wakeup = nil }
                if state.buffer.isEmpty && !state.flushing { return (state.wakeup, true) }
                state.finishWaiter = finished
                return (state.wakeup, false)
            }
            wakeup?.resume()
            if done { finished.resume() }
        }
    }

    func run() async {
        var failures = 0
        while true {
            let (pending, finishing) = state.withLock { ($0.buffer.count, $0.finishing) }
            if pending == 0 {
                if finishing || Task.isCancelled { break }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (wakeup: CheckedContinuation<Void, Never>) in
                        let now = state.withLock { state in
                            // Checked under the lock: a cancellation after this finds the wakeup below.
                            if !state.buffer.isEmpty || state.finishing || Task.isCancelled { return true }
                            state.wakeup = wakeup
                            return false
                        }
                        if now { wakeup.resume() }
                    }
                } onCancel: {
                    let wakeup = state.withLock { state in
                        defer { state.wakeup = nil }
                        return state.wakeup
                    }
                    wakeup?.resume()
                }
                continue
            }
            if pending < fullBatch && !finishing && failures == 0 {
                try? await Task.sleep(for: gatherWindow)  // submit() keeps appending meanwhile
            }
            let batch = state.withLock { state in
                defer { state.buffer.removeAll(keepingCapacity: true) }
                state.flushing = true
                return state.buffer
            }
            do {
                // While finishing, a statement may take only what is left of the deadline.
                let remaining = state.withLock { $0.giveUpAt }.map { max($0 - ContinuousClock.now, .milliseconds(100)) }
                let written = try await store.record(batch, worker: worker, on: session, retrying: failures > 0, timeout: remaining)
                state.withLock { state in for completion in batch { state.submitted[completion.eventID] = nil } }
                failures = 0
                for lost in batch where !written.contains(lost.eventID) {
                    logger.warning("lease lost before the outcome was written; the attempt is recorded, the event stays with its new owner",
                                   metadata: ["event_id": "\(lost.eventID)"])
                }
                WorkerMetrics.recordCompletions(batch)
            } catch {
                failures += 1
                let (pending, givingUp) = state.withLock { state in
                    state.buffer.insert(contentsOf: batch, at: 0)
                    let givingUp = Task.isCancelled || state.giveUpAt.map { ContinuousClock.now >= $0 } == true
                    return (state.buffer.count, givingUp)
                }
                if givingUp {
                    logger.warning("outcomes not written at shutdown; their events come back when their leases expire and are looked up before anything is sent again",
                                   metadata: ["error": "\(error)", "unwritten": "\(pending)"])
                    break
                }
                logger.error("could not write outcomes, retrying", metadata: ["error": "\(error)", "pending": "\(pending)"])
                // At most a second between tries: once the database answers again, the outcome must land
                // before the rescue's hold (migrations/0010) lets another worker take the event.
                try? await Task.sleep(for: Backoff.databaseRetryPause(afterFailures: failures, cap: .seconds(1)))
            }
            let flushed = state.withLock { state in
                state.flushing = false
                guard state.buffer.isEmpty else { return [CheckedContinuation<Void, Never>]() }
                return state.takeWaiters()
            }
            for waiter in flushed { waiter.resume() }
        }
        let flushed = state.withLock { $0.takeWaiters() }
        for waiter in flushed { waiter.resume() }
    }
}
