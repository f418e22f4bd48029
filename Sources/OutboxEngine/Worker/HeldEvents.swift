import Foundation

/// The events this worker holds a lease on: claimed and queued for a free call slot, or being
/// called. The claim loop adds whole claims; each call slot takes the next event when it is free.
///
/// Claiming ahead of the slots (up to `WorkerConfiguration.prefetch` events queued) keeps every
/// slot busy: a slot that finishes starts its next event at once instead of waiting for a claim
/// round trip. Queued CIT evaluates go first, and only they may use the slots kept for CIT.
actor HeldEvents {
    private struct Held {
        var leaseRenewedAt: ContinuousClock.Instant
        let isCIT: Bool
    }

    private var held: [Int64: Held] = [:]
    private var queuedCIT: [ClaimedEvent] = []
    private var queuedOthers: [ClaimedEvent] = []
    private var idleSlots: [(citOnly: Bool, slot: CheckedContinuation<ClaimedEvent?, Never>)] = []
    private var heldOthers = 0
    private var closed = false

    /// Events held: queued plus being called.
    var count: Int { held.count }
    /// Events held that are not CIT evaluates (they may not take the CIT room).
    var nonCITCount: Int { heldOthers }

    /// Registers a claim's events (one call per claim: this is on the claim loop) and hands them
    /// to idle slots, CIT evaluates first.
    func add(_ events: [ClaimedEvent]) {
        let now = ContinuousClock.now
        for event in events {
            let isCIT = event.lane == "cit_evaluate"
            held[event.id] = Held(leaseRenewedAt: now, isCIT: isCIT)
            if !isCIT { heldOthers += 1 }
            if isCIT { queuedCIT.append(event) } else { queuedOthers.append(event) }
        }
        while let index = idleSlots.firstIndex(where: { !queuedCIT.isEmpty || (!$0.citOnly && !queuedOthers.isEmpty) }) {
            let idle = idleSlots.remove(at: index)
            idle.slot.resume(returning: dequeue(citOnly: idle.citOnly))
        }
        publishGauges()
    }

    /// A free slot's next event: the oldest queued CIT evaluate, else (unless the slot is kept for
    /// CIT) the oldest other event; waits for the next claim when nothing fits. `nil` once the
    /// worker is draining.
    func next(citOnly: Bool) async -> ClaimedEvent? {
        if let event = dequeue(citOnly: citOnly) {
            publishGauges()
            return event
        }
        if closed { return nil }
        return await withCheckedContinuation { idleSlots.append((citOnly, $0)) }
    }

    /// The slot is done with `id` (its outcome is with the writer). Returns the events still held.
    func finish(_ id: Int64) -> Int {
        if let done = held.removeValue(forKey: id), !done.isCIT { heldOthers -= 1 }
        publishGauges()
        return held.count
    }

    /// Draining: no slot gets another event. Returns the queued events, never started, for the
    /// worker to give back; they are no longer held.
    func close() -> [ClaimedEvent] {
        closed = true
        for idle in idleSlots { idle.slot.resume(returning: nil) }
        idleSlots.removeAll()
        let unstarted = queuedCIT + queuedOthers
        queuedCIT.removeAll()
        queuedOthers.removeAll()
        for event in unstarted { _ = finish(event.id) }
        return unstarted
    }

    /// Events whose lease was last set more than `age` ago: their leases need renewing.
    func leasesOlder(than age: Duration) -> [Int64] {
        let now = ContinuousClock.now
        return held.filter { now - $0.value.leaseRenewedAt >= age }.map(\.key)
    }

    /// Restarts the renewal clock of events whose lease was just extended.
    func renewed(_ ids: Set<Int64>) {
        let now = ContinuousClock.now
        for id in ids { held[id]?.leaseRenewedAt = now }
    }

    private func dequeue(citOnly: Bool) -> ClaimedEvent? {
        if !queuedCIT.isEmpty { return queuedCIT.removeFirst() }
        if !citOnly && !queuedOthers.isEmpty { return queuedOthers.removeFirst() }
        return nil
    }

    private func publishGauges() {
        let queued = queuedCIT.count + queuedOthers.count
        WorkerMetrics.held(calling: held.count - queued, queued: queued)
    }
}
