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
/// A failed flush (database restarting) keeps the batch and tries again: a completion is never
/// dropped. If the lease expired meanwhile, the attempt is still recorded and the event is left
/// to the worker that took it over.
final class CompletionWriter: Sendable {
    private struct State {
        var buffer: [Completion] = []
        var wakeup: CheckedContinuation<Void, Never>?
        var finishing = false
        var flushing = false
        var flushedWaiters: [CheckedContinuation<Void, Never>] = []
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
        let wakeup = state.withLock { state in
            state.buffer.append(completion)
            defer { state.wakeup = nil }
            return state.wakeup
        }
        wakeup?.resume()
    }

    /// Flushes what is buffered and returns once it is written; `run()` then ends.
    func finish() async {
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let (wakeup, done) = state.withLock { state in
                state.finishing = true
                defer { state.wakeup = nil }
                if state.buffer.isEmpty && !state.flushing { return (state.wakeup, true) }
                state.flushedWaiters.append(finished)
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
                if finishing { break }
                await withCheckedContinuation { (wakeup: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state in
                        if !state.buffer.isEmpty || state.finishing { return true }
                        state.wakeup = wakeup
                        return false
                    }
                    if now { wakeup.resume() }
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
                let written = try await store.record(batch, worker: worker, on: session)
                failures = 0
                for lost in batch where !written.contains(lost.eventID) {
                    logger.warning("lease lost before the outcome was written; the attempt is recorded, the event stays with its new owner",
                                   metadata: ["event_id": "\(lost.eventID)"])
                }
                WorkerMetrics.recordCompletions(batch)
            } catch {
                failures += 1
                let pending = state.withLock { state in
                    state.buffer.insert(contentsOf: batch, at: 0)
                    return state.buffer.count
                }
                logger.error("could not write outcomes, retrying", metadata: ["error": "\(error)", "pending": "\(pending)"])
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5000)))
            }
            let flushed = state.withLock { state in
                state.flushing = false
                guard state.buffer.isEmpty else { return [CheckedContinuation<Void, Never>]() }
                defer { state.flushedWaiters.removeAll() }
                return state.flushedWaiters
            }
            for waiter in flushed { waiter.resume() }
        }
        let flushed = state.withLock { state in
            defer { state.flushedWaiters.removeAll() }
            return state.flushedWaiters
        }
        for waiter in flushed { waiter.resume() }
    }
}
