import LibPQ
import Logging
import Synchronization

/// Writes completions in batches on its own connection.
///
/// Each statement costs PostgreSQL about as much as four more rows (a commit, planning, executor
/// start: ~950 k instructions, against ~220 k per row; callgrind), so the writer waits for company
/// before it writes, as long as nobody waits for the write:
/// - an outcome someone waits for (its event was claimed in a lane that ``Lane/wakesAtOnce``: CIT
///   and MIT evaluates, whose done NOTIFY the gateway's checkout listens for, and an event raised
///   into such a lane because an evaluate of its order waits behind it) is written at most
///   `urgentWindow` (10 ms) after the first completion of its batch arrived, and takes everything
///   gathered with it;
/// - other outcomes (transmits, follow-ups) wait until `fullBatch` (the claim batch size) are
///   gathered or `companyWindow` (``WorkerConfiguration/outcomeBatchWindow``, 50 ms) has passed
///   since the first arrived, whichever comes first. At 50 ms calls completions arrive a few at a
///   time; a longer window makes a batch several times larger.
/// The wait delays only the event's own row: its done NOTIFY, and the claim of the next event of
/// the same order (claimed only once this outcome is written), by at most the window; call slots
/// are free as soon as the call ends.
/// A failed flush (database restarting) keeps the batch and tries again, at least once a second,
/// and the worker keeps renewing the leases of outcomes that wait (``unwritten(olderThan:)``), so
/// a completion is not dropped while the process runs. If the lease was lost meanwhile, the
/// attempt is still recorded and the event is left to the worker that took it over (see
/// `OutboxStore.record`). At shutdown, ``finish(within:)`` writes what is gathered at once and
/// gives up after its deadline, and a cancelled task stops at once: what is left unwritten comes
/// back when its lease expires, and is looked up before it is sent again.
final class CompletionWriter: Sendable {
    /// When a gathered batch is written (see the type's documentation).
    struct Batching: Sendable {
        /// The longest an outcome someone waits for waits for company.
        var urgentWindow: Duration = .milliseconds(10)
        /// The longest any other outcome waits for company.
        var companyWindow: Duration = .milliseconds(50)
        /// Written at once when this many are gathered.
        var fullBatch = 64
    }

    private struct State {
        let batching: Batching
        var buffer: [Completion] = []
        /// When the oldest buffered completion arrived; `nil` while nothing is buffered.
        var gatheringSince: ContinuousClock.Instant?
        /// Someone waits for a buffered completion.
        var urgent = false
        /// When each buffered or in-flight completion was submitted, by event id.
        var submitted: [Int64: ContinuousClock.Instant] = [:]
        /// After this instant (set by `finish(within:)`) a failed flush is not tried again.
        var giveUpAt: ContinuousClock.Instant?
        var wakeup: CheckedContinuation<Void, Never>?
        var finishing = false
        var flushing = false
        /// The caller of `finish(within:)`, resumed when everything is written or at its deadline.
        var finishWaiter: CheckedContinuation<Void, Never>?

        /// When what is buffered is due to be written; `nil` while nothing is buffered.
        var flushAt: ContinuousClock.Instant? {
            guard let since = gatheringSince else { return nil }
            if finishing || buffer.count >= batching.fullBatch { return since }
            return since + (urgent ? batching.urgentWindow : batching.companyWindow)
        }

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { finishWaiter = nil }
            return finishWaiter.map { [$0] } ?? []
        }

        mutating func takeWakeup() -> CheckedContinuation<Void, Never>? {
            defer { wakeup = nil }
            return wakeup
        }
    }

    private let session: PGSession
    private let store = OutboxStore()
    private let worker: String
    private let logger: Logger
    /// A lock, not an actor: every finished call submits, and a hop would wait its turn on a busy
    /// event loop.
    private let state: Mutex<State>

    init(session: PGSession, worker: String, logger: Logger, batching: Batching = Batching()) {
        self.session = session
        self.worker = worker
        self.logger = logger
        state = Mutex(State(batching: batching))
    }

    /// Queues `completion` of an event claimed in `lane` (``ClaimedEvent/claimLane``), which says
    /// whether someone waits for it (``Lane/wakesAtOnce``).
    func submit(_ completion: Completion, lane: Lane) {
        let now = ContinuousClock.now
        let wakeup = state.withLock { state in
            let due = state.flushAt
            if state.buffer.isEmpty { state.gatheringSince = now }
            if lane.wakesAtOnce { state.urgent = true }
            state.buffer.append(completion)
            state.submitted[completion.eventID] = now
            // The writer is woken only when this changes when the batch is due (the first of a
            // batch, the first urgent one, a full batch), not once per completion.
            return state.flushAt == due ? nil : state.takeWakeup()
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
                if state.buffer.isEmpty && !state.flushing { return (state.takeWakeup(), true) }
                state.finishWaiter = finished
                return (state.takeWakeup(), false)
            }
            wakeup?.resume()
            if done { finished.resume() }
        }
    }

    func run() async {
        var failures = 0
        while true {
            let (due, finishing) = state.withLock { ($0.flushAt, $0.finishing) }
            guard let due else {
                if finishing || Task.isCancelled { break }
                await park(expecting: nil)
                continue
            }
            // After a failure the retry pause was the wait; a cancelled writer does not wait either.
            if failures == 0 && ContinuousClock.now < due && !Task.isCancelled {
                await park(expecting: due)  // submit() keeps appending meanwhile
                continue
            }
            let (batch, since, urgent) = state.withLock { state in
                defer {
                    state.buffer.removeAll(keepingCapacity: true)
                    state.gatheringSince = nil
                    state.urgent = false
                }
                state.flushing = true
                return (state.buffer, state.gatheringSince, state.urgent)
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
                    state.gatheringSince = since
                    state.urgent = state.urgent || urgent
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

    /// Parks `run()` until what is buffered is due (`due`, `nil`: nothing buffered), or until
    /// `submit()` changes when it is due, `finish(within:)` is called or the task is cancelled.
    /// A wakeup may come early (a timer that fired as it was cancelled): `run()` looks again.
    private func park(expecting due: ContinuousClock.Instant?) async {
        let timer = due.map { due in
            Task { [weak self] in
                guard (try? await Task.sleep(until: due, clock: .continuous)) != nil else { return }
                self?.wake()
            }
        }
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (wakeup: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    // Checked under the lock: a submit, finish or cancellation after this finds the wakeup.
                    if state.flushAt != due || state.finishing || Task.isCancelled { return true }
                    if let due, ContinuousClock.now >= due { return true }
                    state.wakeup = wakeup
                    return false
                }
                if now { wakeup.resume() }
            }
        } onCancel: {
            wake()
        }
    }

    private func wake() {
        state.withLock { $0.takeWakeup() }?.resume()
    }
}
