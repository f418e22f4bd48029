/// A coalescing wake-up for the claim loop: any number of `signal()` calls while nobody waits
/// wake the next `wait` once. NOTIFYs, freed slots and shutdown signal it; a NOTIFY for a CIT
/// evaluate signals it as urgent.
actor WakeSignal {
    /// Why `wait` returned.
    enum Reason { case signal, urgent, timeout }

    private var pending: Reason?
    private var waiter: CheckedContinuation<Reason, Never>?

    func signal(urgent: Bool = false) {
        deliver(urgent ? .urgent : .signal)
    }

    /// Returns at the next signal, or after `timeout`, whichever comes first.
    func wait(timeout: Duration) async -> Reason {
        if let reason = pending {
            pending = nil
            return reason
        }
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }  // cancelled: woken already
            await self?.deliver(.timeout)
        }
        let reason = await withCheckedContinuation { waiter = $0 }
        timer.cancel()
        return reason
    }

    private func deliver(_ reason: Reason) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: reason)
        } else if pending != .urgent {
            pending = reason == .timeout ? (pending ?? .timeout) : reason
        }
    }
}
