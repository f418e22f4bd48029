import Testing
@testable import OutboxEngine

/// The claim loop's wake-up (``WakeSignal``): no database. Timeouts are an hour where a test
/// expects a signal, so only the signal (or cancellation) can end the wait.
@Suite(.timeLimit(.minutes(1))) struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitIsNotLost() async {
        let wake = WakeSignal()
        wake.signal()
        #expect(await result(of: Task { await wake.wait(timeout: .seconds(3600)) }) == .signal)
        #expect(!wake.isWaiting)
    }

    @Test func signalsWhileNobodyWaitsWakeTheNextWaitOnceAndUrgentWins() async {
        let wake = WakeSignal()
        wake.signal()
        wake.signal()
        wake.signal()
        #expect(await wake.wait(timeout: .seconds(3600)) == .signal)
        // Coalesced: nothing is left for a second wait, which times out.
        #expect(await wake.wait(timeout: .milliseconds(20)) == .timeout)

        wake.signal()
        wake.signal(urgent: true)
        wake.signal()  // a plain signal after an urgent one does not demote it
        #expect(await wake.wait(timeout: .seconds(3600)) == .urgent)
        #expect(await wake.wait(timeout: .milliseconds(20)) == .timeout)
        #expect(!wake.isWaiting)
    }

    @Test func aSignalWakesASuspendedWaiterAndDisarmsItsTimer() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(3600)) }
        #expect(await eventually { wake.isWaiting })
        wake.signal(urgent: true)
        #expect(await result(of: waiter) == .urgent)
        #expect(!wake.isWaiting)
        // The waiter took the signal: none is pending for the next wait.
        #expect(await wake.wait(timeout: .milliseconds(20)) == .timeout)
    }

    @Test func aWaitWithoutSignalEndsAtItsTimeoutAndAnEarlierTimerNeverEndsALaterWait() async {
        let wake = WakeSignal()
        #expect(await wake.wait(timeout: .milliseconds(10)) == .timeout)
        #expect(!wake.isWaiting)
        // A wait woken by a signal leaves no timer that could end the next wait early.
        let first = Task { await wake.wait(timeout: .milliseconds(50)) }
        #expect(await eventually { wake.isWaiting })
        wake.signal()
        #expect(await result(of: first) == .signal)
        let second = Task { await wake.wait(timeout: .seconds(3600)) }
        #expect(await eventually { wake.isWaiting })
        try? await Task.sleep(for: .milliseconds(200))  // well past the first wait's timer
        #expect(wake.isWaiting, "the first wait's timer ended the second wait")
        wake.signal()
        #expect(await result(of: second) == .signal)
    }

    @Test func aCancelledWaiterReturnsPromptlyAndLeavesNothingBehind() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(3600)) }
        #expect(await eventually { wake.isWaiting })
        waiter.cancel()
        #expect(await result(of: waiter) == .cancelled)
        #expect(!wake.isWaiting, "a cancelled wait left its continuation or timer behind")
        // A later signal is kept for the next wait, not swallowed by the cancelled one.
        wake.signal()
        #expect(await wake.wait(timeout: .seconds(3600)) == .signal)
    }

    @Test func aWaitInAnAlreadyCancelledTaskReturnsAtOnceButAPendingSignalStillCounts() async {
        let wake = WakeSignal()
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await wake.wait(timeout: .seconds(3600))
        }
        #expect(await result(of: cancelled) == .cancelled)
        #expect(!wake.isWaiting)

        wake.signal()
        let pending = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await wake.wait(timeout: .seconds(3600))
        }
        #expect(await result(of: pending) == .signal)
    }

    @Test func aCancelledWaitReleasesTheSignal() async {
        weak var released: WakeSignal?
        do {
            let wake = WakeSignal()
            released = wake
            let waiter = Task { await wake.wait(timeout: .seconds(3600)) }
            #expect(await eventually { wake.isWaiting })
            waiter.cancel()
            #expect(await result(of: waiter) == .cancelled)
        }
        // Nothing (a timer task, a continuation) keeps the signal alive after its waiter is gone.
        #expect(await eventually { released == nil })
    }
}
