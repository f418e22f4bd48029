import FlexChargeSandbox
import Foundation
import Testing
@testable import OutboxEngine

/// The retry rules (``RetryPolicy``, ``Backoff``) as pure functions: no database, no clock.
@Suite struct RetryPolicyTests {
    let backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))

    @Test func theCeilingDoublesFromTheBaseUpToTheCap() {
        #expect(backoff.ceiling(afterAttempt: 1) == .milliseconds(100))
        #expect(backoff.ceiling(afterAttempt: 2) == .milliseconds(200))
        #expect(backoff.ceiling(afterAttempt: 3) == .milliseconds(400))
        #expect(backoff.ceiling(afterAttempt: 6) == .milliseconds(3200))
        #expect(backoff.ceiling(afterAttempt: 7) == .seconds(5))
        // Far past the cap, and nonsense attempts, stay in range (no overflow, no negative wait).
        #expect(backoff.ceiling(afterAttempt: 1000) == .seconds(5))
        #expect(backoff.ceiling(afterAttempt: Int.max) == .seconds(5))
        #expect(backoff.ceiling(afterAttempt: 0) == .milliseconds(100))
        #expect(backoff.ceiling(afterAttempt: -3) == .milliseconds(100))
    }

    @Test func everyDelayIsWithinZeroAndTheCeilingAndTheJitterSpreadsOverIt() {
        var generator = SeededGenerator(seed: 42)
        for attempt in 1...12 {
            let ceiling = backoff.ceiling(afterAttempt: attempt)
            let delays = (0..<400).map { _ in backoff.delay(afterAttempt: attempt, using: &generator) }
            #expect(delays.allSatisfy { $0 >= .zero && $0 <= ceiling }, "attempt \(attempt)")
            // Full jitter: the waits cover the range, not one point (400 uniform draws all in one
            // quarter of it would be a broken generator or formula, chance 4 × 0.25^400).
            let quarter = ceiling / 4
            #expect(delays.contains { $0 < quarter }, "attempt \(attempt): none in the lowest quarter")
            #expect(delays.contains { $0 > ceiling - quarter }, "attempt \(attempt): none in the highest quarter")
        }
    }

    @Test func theSameSeedGivesTheSameDelays() {
        var first = SeededGenerator(seed: 7), second = SeededGenerator(seed: 7), other = SeededGenerator(seed: 8)
        let a = (1...20).map { backoff.delay(afterAttempt: $0, using: &first) }
        let b = (1...20).map { backoff.delay(afterAttempt: $0, using: &second) }
        let c = (1...20).map { backoff.delay(afterAttempt: $0, using: &other) }
        #expect(a == b)
        #expect(a != c)
    }

    @Test func retryAfterIsAFloorNotACeiling() {
        var generator = SeededGenerator(seed: 1)
        for _ in 0..<200 {
            // A Retry-After above the ceiling wins; one below it only lifts the shortest waits.
            #expect(backoff.delay(afterAttempt: 1, retryAfter: .seconds(30), using: &generator) == .seconds(30))
            let delay = backoff.delay(afterAttempt: 3, retryAfter: .milliseconds(300), using: &generator)
            #expect(delay >= .milliseconds(300) && delay <= .milliseconds(400))
        }
    }

    @Test func anEventIsDeadAfterExactlyMaxAttempts() {
        let policy = RetryPolicy(maxAttempts: 3)
        #expect(!policy.isExhausted(afterAttempt: 1))
        #expect(!policy.isExhausted(afterAttempt: 2))
        #expect(policy.isExhausted(afterAttempt: 3))
        #expect(policy.isExhausted(afterAttempt: 4))  // an operator's cap lowered below an event's count
        #expect(RetryPolicy(maxAttempts: 1).isExhausted(afterAttempt: 1))
    }

    @Test func theDefaultsAreProductions() {
        let policy = RetryPolicy()
        #expect(policy.maxAttempts == 12)
        #expect(policy.idempotencyWindow == .seconds(24 * 3600))
        #expect(policy.backoff == Backoff(base: .milliseconds(500), cap: .seconds(300)))
        #expect(WorkerConfiguration().retryPolicy == policy)
    }

    @Test func theWorkersPauseAfterDatabaseFailuresDoublesFrom200MillisecondsUpToItsCap() {
        let pauses = (1...6).map { Backoff.databaseRetryPause(afterFailures: $0, cap: .seconds(5)) }
        #expect(pauses == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200), .seconds(5)])
        #expect(Backoff.databaseRetryPause(afterFailures: 100, cap: .seconds(1)) == .seconds(1))
    }

    @Test func theIdempotencyWindowPassesAtItsEndAndForAFirstSendFromTheFuture() {
        let policy = RetryPolicy(idempotencyWindow: .seconds(3600))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(!policy.idempotencyWindowHasPassed(firstSentAt: now, now: now))
        #expect(!policy.idempotencyWindowHasPassed(firstSentAt: now - 3599, now: now))
        #expect(policy.idempotencyWindowHasPassed(firstSentAt: now - 3600, now: now))
        #expect(policy.idempotencyWindowHasPassed(firstSentAt: now - 90_000, now: now))
        // A first send slightly ahead is clock skew between hosts; far ahead cannot be real: the safe side.
        #expect(!policy.idempotencyWindowHasPassed(firstSentAt: now + 299, now: now))
        #expect(policy.idempotencyWindowHasPassed(firstSentAt: now + 301, now: now))
    }
}
