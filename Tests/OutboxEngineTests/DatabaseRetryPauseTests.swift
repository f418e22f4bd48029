import Testing
@testable import OutboxEngine

/// The pause of the claim loop and the outcome writer after database failures in a row.
@Suite struct DatabaseRetryPauseTests {
    @Test func thePauseDoublesFrom200MillisecondsUpToItsCap() {
        let waits = (1...6).map { Backoff.databaseRetryPause(afterFailures: $0, cap: .seconds(5)) }
        #expect(waits == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                          .milliseconds(3200), .seconds(5)])
        // The outcome writer's cap: a written outcome must land before the rescue's hold passes.
        #expect(Backoff.databaseRetryPause(afterFailures: 3, cap: .seconds(1)) == .milliseconds(800))
        #expect(Backoff.databaseRetryPause(afterFailures: 4, cap: .seconds(1)) == .seconds(1))
        #expect(Backoff.databaseRetryPause(afterFailures: 10_000, cap: .seconds(1)) == .seconds(1))
    }
}
