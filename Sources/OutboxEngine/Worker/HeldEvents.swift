import Foundation
import NIOCore
import Synchronization

/// The events this worker holds a lease on: claimed and queued for a free call slot, or being
/// called. The claim loop adds whole claims; each call slot takes the next event when it is free.
///
/// Claiming ahead of the slots (up to `WorkerConfiguration.prefetch` events queued) keeps every
/// slot busy: a slot that finishes starts its next event at once instead of waiting for a claim
/// round trip. Queued events start in lane order (CIT evaluates and the events a CIT evaluate
/// waits for, then MIT evaluates, follow-ups, transmits), oldest first within a lane; only the CIT lane
/// may use the slots kept for CIT.
///
/// A lock, not an actor: a slot finishes and takes its next event without an executor hop.
final class HeldEvents: Sendable {
    private struct Held {
        var leaseRenewedAt: ContinuousClock.Instant
        let isCIT: Bool
    }

    private struct State {
        var held: [Int64: Held] = [:]
        /// One queue per claim lane, indexed by its raw value, most urgent first. Ring buffers: taking the
        /// oldest event from an array moved every other one (measured: 16 k instructions per event).
        var queues: [CircularBuffer<ClaimedEvent>] = State.emptyQueues
        static var emptyQueues: [CircularBuffer<ClaimedEvent>] { Array(repeating: CircularBuffer(), count: Lane.allCases.count) }
        var idleSlots: [(ticket: UInt64, citOnly: Bool, slot: CheckedContinuation<ClaimedEvent?, Never>)] = []
        /// Numbers the waits of idle slots, so a cancelled one finds its own.
        var tickets: UInt64 = 0
        var heldOthers = 0
        var closed = false

        var queued: Int { queues.reduce(0) { $0 + $1.count } }

        mutating func dequeue(citOnly: Bool) -> ClaimedEvent? {
            for lane in Lane.allCases where !queues[lane.rawValue].isEmpty {
                if citOnly && !lane.usesCITRoom { return nil }
                return queues[lane.rawValue].removeFirst()
            }
            return nil
        }

        mutating func release(_ id: Int64) {
            if let done = held.removeValue(forKey: id), !done.isCIT { heldOthers -= 1 }
        }
    }

    private let state = Mutex(State())

    /// The in-flight and prefetched gauges exist from the start (at 0), so /metrics shows them before
    /// the first claim holds anything.
    init() {
        WorkerMetrics.held(calling: 0, queued: 0)
    }

    /// Events held: queued plus being called.
    var count: Int { state.withLock { $0.held.count } }
    /// Events held outside the CIT lane (they may not take the CIT room).
    var nonCITCount: Int { state.withLock { $0.heldOthers } }
    /// Slots waiting for an event.
    var waitingSlots: Int { state.withLock { $0.idleSlots.count } }

    /// Registers a claim's events and hands them to idle slots, in lane order, oldest first within
    /// a lane (a claim returns its rows in no particular order).
    func add(_ events: [ClaimedEvent]) {
        let now = ContinuousClock.now
        let (handoffs, held, queued) = state.withLock { state in
            for event in events.sorted(by: { $0.id < $1.id }) {
                let lane = event.claimLane
                state.held[event.id] = Held(leaseRenewedAt: now, isCIT: lane.usesCITRoom)
                state.queues[lane.rawValue].append(event)
                if !lane.usesCITRoom { state.heldOthers += 1 }
            }
            var handoffs: [(CheckedContinuation<ClaimedEvent?, Never>, ClaimedEvent)] = []
            let idleSlots = state.idleSlots
            state.idleSlots.removeAll()
            for idle in idleSlots {
                if let event = state.dequeue(citOnly: idle.citOnly) {
                    handoffs.append((idle.slot, event))
                } else {
                    state.idleSlots.append(idle)
                }
            }
            return (handoffs, state.held.count, state.queued)
        }
        for (slot, event) in handoffs { slot.resume(returning: event) }
        WorkerMetrics.held(calling: held - queued, queued: queued)
    }

    /// A free slot's next event: the oldest of the first lane with queued events (a slot kept for
    /// CIT takes the CIT lane only); waits for the next claim when nothing fits. `nil` once the worker
    /// is draining, or at once when the waiting slot's task is cancelled.
    func next(citOnly: Bool) async -> ClaimedEvent? {
        if let event = state.withLock({ $0.dequeue(citOnly: citOnly) }) { return event }
        let ticket = state.withLock { state in
            state.tickets &+= 1
            return state.tickets
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { slot in
                let ready: ClaimedEvent?? = state.withLock { state in
                    if let event = state.dequeue(citOnly: citOnly) { return .some(event) }
                    // Checked under the lock: a cancellation after this finds the slot below.
                    if state.closed || Task.isCancelled { return .some(nil) }
                    state.idleSlots.append((ticket, citOnly, slot))
                    return nil
                }
                if let ready { slot.resume(returning: ready) }
            }
        } onCancel: {
            let slot = state.withLock { state in
                state.idleSlots.firstIndex { $0.ticket == ticket }.map { state.idleSlots.remove(at: $0).slot }
            }
            slot?.resume(returning: nil)
        }
    }

    /// The slot is done with `id` (its outcome is with the writer). Returns the events still held.
    func finish(_ id: Int64) -> Int {
        let (held, queued) = state.withLock { state in
            state.release(id)
            return (state.held.count, state.queued)
        }
        WorkerMetrics.held(calling: held - queued, queued: queued)
        return held
    }

    /// Draining: no slot gets another event. Returns the queued events, never started, for the
    /// worker to give back; they are no longer held.
    func close() -> [ClaimedEvent] {
        let (idle, unstarted) = state.withLock { state in
            state.closed = true
            let idle = state.idleSlots.map(\.slot)
            state.idleSlots.removeAll()
            let unstarted = state.queues.flatMap { $0 }
            state.queues = State.emptyQueues
            for event in unstarted { state.release(event.id) }
            return (idle, unstarted)
        }
        for slot in idle { slot.resume(returning: nil) }
        return unstarted
    }

    /// Events whose lease was last set more than `age` ago: their leases need renewing.
    func leasesOlder(than age: Duration) -> [Int64] {
        let now = ContinuousClock.now
        return state.withLock { $0.held.filter { now - $0.value.leaseRenewedAt >= age }.map(\.key) }
    }

    /// Restarts the renewal clock of events whose lease was just extended.
    func renewed(_ ids: Set<Int64>) {
        let now = ContinuousClock.now
        state.withLock { state in
            for id in ids { state.held[id]?.leaseRenewedAt = now }
        }
    }
}
