import Testing
@testable import OutboxEngine

/// How a call slot waits in ``HeldEvents`` when nothing is queued, without a database: only the
/// waiting, draining and cancellation (the lane order is HeldEventsTests', with real claims).
@Suite(.timeLimit(.minutes(1))) struct HeldEventsWaitTests {
    /// True when the slot's wait ended (within the bound) without an event.
    static func endedEmpty(_ slot: Task<ClaimedEvent?, Never>) async -> Bool {
        guard case .some(let event) = await result(of: slot) else { return false }
        return event == nil
    }

    @Test func closingWakesEveryWaitingSlotWithNothingAndLaterSlotsGetNothingAtOnce() async {
        let held = HeldEvents()
        let slots = (0..<3).map { index in Task { await held.next(citOnly: index == 0) } }
        #expect(await eventually { held.waitingSlots == 3 })
        #expect(held.close().isEmpty)
        for slot in slots { #expect(await Self.endedEmpty(slot)) }
        #expect(held.waitingSlots == 0)
        #expect(await Self.endedEmpty(Task { await held.next(citOnly: false) }))
    }

    @Test func aCancelledWaitingSlotReturnsPromptlyAndLeavesTheOthersWaiting() async {
        let held = HeldEvents()
        let cancelled = Task { await held.next(citOnly: false) }
        let other = Task { await held.next(citOnly: true) }
        #expect(await eventually { held.waitingSlots == 2 })
        cancelled.cancel()
        #expect(await Self.endedEmpty(cancelled), "a cancelled slot kept waiting for a claim")
        // Its continuation is gone from the idle slots; the other slot still waits for its event.
        #expect(held.waitingSlots == 1)
        #expect(held.count == 0)
        _ = held.close()
        #expect(await Self.endedEmpty(other))
        #expect(held.waitingSlots == 0)
    }

    @Test func aSlotWhoseTaskIsAlreadyCancelledDoesNotPark() async {
        let held = HeldEvents()
        let slot = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await held.next(citOnly: false)
        }
        #expect(await Self.endedEmpty(slot))
        #expect(held.waitingSlots == 0)
    }
}
