import LibPQ
import Logging

/// Writes completions in batches on its own connection.
///
/// No timer adds latency: the writer flushes whatever has accumulated as soon as the previous
/// flush returns, so batches grow by themselves under load and stay single rows when idle.
/// A failed flush (database restarting) keeps the batch and tries again: a completion is never
/// dropped. If the lease expired meanwhile, the attempt is still recorded and the event is left
/// to the worker that took it over.
actor CompletionWriter {
    private let session: PGSession
    private let store = OutboxStore()
    private let worker: String
    private let logger: Logger
    private var buffer: [Completion] = []
    private var wakeup: CheckedContinuation<Void, Never>?
    private var finishing = false
    private var flushing = false
    private var flushedWaiters: [CheckedContinuation<Void, Never>] = []

    init(session: PGSession, worker: String, logger: Logger) {
        self.session = session
        self.worker = worker
        self.logger = logger
    }

    func submit(_ completion: Completion) {
        buffer.append(completion)
        wakeup?.resume()
        wakeup = nil
    }

    /// Flushes what is buffered and returns once it is written; `run()` then ends.
    func finish() async {
        finishing = true
        wakeup?.resume()
        wakeup = nil
        if buffer.isEmpty && !flushing { return }
        await withCheckedContinuation { flushedWaiters.append($0) }
    }

    func run() async {
        var failures = 0
        while true {
            if buffer.isEmpty {
                if finishing { break }
                await withCheckedContinuation { wakeup = $0 }
                continue
            }
            let batch = buffer
            buffer.removeAll(keepingCapacity: true)
            flushing = true
            defer { flushing = false }
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
                buffer.insert(contentsOf: batch, at: 0)
                logger.error("could not write outcomes, retrying", metadata: ["error": "\(error)", "pending": "\(buffer.count)"])
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5000)))
            }
            if buffer.isEmpty {
                for waiter in flushedWaiters { waiter.resume() }
                flushedWaiters.removeAll()
            }
        }
        for waiter in flushedWaiters { waiter.resume() }
        flushedWaiters.removeAll()
    }
}
