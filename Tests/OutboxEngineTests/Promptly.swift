import Synchronization

/// The task's result, or nil when it has not finished within `limit` (the task is then left
/// running: a waiter that ignores cancellation must fail its test, not hang it).
///
/// The limit is a generous bound for "promptly" under a loaded CI run, not a timing measurement.
func result<T: Sendable>(of task: Task<T, Never>, within limit: Duration = .seconds(10)) async -> T? {
    await withCheckedContinuation { continuation in
        let once = ResumeOnce(continuation)
        let timer = Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            once.resume(returning: nil)
        }
        Task {
            let value = await task.value
            timer.cancel()
            once.resume(returning: value)
        }
    }
}

/// A continuation resumed by whichever of two racers comes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, Never>?>

    init(_ continuation: CheckedContinuation<T?, Never>) { self.continuation = Mutex(continuation) }

    func resume(returning value: T?) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}
