import Synchronization

/// A coalescing wake-up for the claim loop: any number of `signal()` calls while nobody waits
/// wake the next `wait` once. NOTIFYs, finished calls and shutdown signal it; a NOTIFY for a CIT
/// evaluate signals it as urgent.
///
/// `signal()` is synchronous (a lock, no actor hop): every finished call may signal it, and under
/// load each hop waits its turn on a busy event loop.
final class WakeSignal: Sendable {
    /// Why `wait` returned.
    enum Reason { case signal, urgent, timeout, cancelled }

    private struct State {
        var pending: Reason?
        var waiter: CheckedContinuation<Reason, Never>?
        var timer: Task<Void, Never>?
        /// Counts waits, so that a timer of an earlier wait never ends a later one.
        var wait: UInt64 = 0
    }

    private let state = Mutex(State())

    func signal(urgent: Bool = false) {
        deliver(urgent ? .urgent : .signal, toWait: nil)
    }

    /// Returns at the next signal, or after `timeout`, whichever comes first; at once (`.cancelled`)
    /// when the waiting task is cancelled, its timer cancelled with it. A signal already pending is
    /// returned even to a cancelled task.
    func wait(timeout: Duration) async -> Reason {
        let wait = state.withLock { state in
            state.wait &+= 1
            return state.wait
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Reason? = state.withLock { state in
                    if let reason = state.pending {
                        state.pending = nil
                        return reason
                    }
                    // Checked under the lock: a cancellation after this finds the waiter below.
                    if Task.isCancelled { return .cancelled }
                    state.waiter = continuation
                    state.timer = Task { [weak self] in
                        guard (try? await Task.sleep(for: timeout)) != nil else { return }  // cancelled: woken already
                        self?.deliver(.timeout, toWait: wait)
                    }
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            deliver(.cancelled, toWait: wait)
        }
    }

    /// True while a `wait` is suspended or its timer is armed (for tests: nothing is left behind).
    var isWaiting: Bool { state.withLock { $0.waiter != nil || $0.timer != nil } }

    private func deliver(_ reason: Reason, toWait wait: UInt64?) {
        let woken: (CheckedContinuation<Reason, Never>, Task<Void, Never>?)? = state.withLock { state in
            if let wait, wait != state.wait || state.waiter == nil { return nil }  // a stale timer
            if let waiter = state.waiter {
                defer { state.waiter = nil; state.timer = nil }
                return (waiter, state.timer)
            }
            if state.pending != .urgent {
                state.pending = reason == .timeout ? (state.pending ?? .timeout) : reason
            }
            return nil
        }
        guard let (waiter, timer) = woken else { return }
        if reason != .timeout { timer?.cancel() }
        waiter.resume(returning: reason)
    }
}
