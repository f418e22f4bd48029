import Foundation

/// A serial executor that runs every job on one dedicated OS thread.
///
/// libpq is blocking and a `PGconn` must be used by one thread at a time. An actor whose
/// executor is one of these runs all of its methods on the same thread, so blocking libpq calls
/// never occupy Swift concurrency's cooperative threads (there are as many of those as cores).
final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private var threadRunning = false
    private let name: String

    /// Starts the thread. `name` shows up in debuggers and `top -H`.
    init(name: String) {
        self.name = name
        condition.lock()
        startThread()
        condition.unlock()
    }

    /// Queues a job. After ``shutdown()`` a job still runs (on a short-lived thread of its own, one
    /// at a time), so a call made on a closed session fails at once instead of waiting for ever.
    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        if !threadRunning { startThread() }
        condition.signal()
        condition.unlock()
    }

    /// Called with `condition` locked.
    private func startThread() {
        threadRunning = true
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish the jobs already queued, then exit (later jobs get a thread of their own).
    func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                threadRunning = false
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }
}
