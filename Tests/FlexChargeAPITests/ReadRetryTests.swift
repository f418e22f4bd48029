@testable import FlexChargeAPI
import Synchronization
import Testing

/// ``ReadRetry``: which failed reads are tried again, how often, and when it stops.
@Suite struct ReadRetryTests {
    private static func failure(_ failureClass: FlexChargeError.FailureClass, status: Int? = nil) -> FlexChargeError {
        FlexChargeError(failureClass: failureClass, route: "GET /orders", httpStatus: status, message: "test")
    }

    /// Tries `read`'s failure under `budget`; answers how many tries were made and whether it ended in success.
    private func tries(of error: FlexChargeError, succeedingOnTry: Int? = nil, budget: Duration = ReadRetry.budget,
                       taking delay: Duration = .zero) async -> (Int, Bool) {
        let count = Mutex(0)
        do {
            _ = try await ReadRetry.run(budget: budget) { () async throws -> Int in
                let now = count.withLock { $0 += 1; return $0 }
                try await Task.sleep(for: delay)
                if now == succeedingOnTry { return now }
                throw error
            }
            return (count.withLock { $0 }, true)
        } catch {
            return (count.withLock { $0 }, false)
        }
    }

    @Test func aFailureAnotherTryMayNotMeetIsTriedUpToTheLimit() async {
        for error in [Self.failure(.retryable, status: 502), Self.failure(.retryable, status: 408), Self.failure(.ambiguous)] {
            let (made, succeeded) = await tries(of: error)
            #expect(made == ReadRetry.tries && !succeeded, "\(error)")
        }
        let (made, succeeded) = await tries(of: Self.failure(.retryable, status: 503), succeedingOnTry: 2)
        #expect(made == 2 && succeeded)
    }

    @Test func aRateLimitOrARefusalIsNotTriedAgain() async {
        for error in [Self.failure(.retryable, status: 429), Self.failure(.permanent, status: 400), Self.failure(.permanent, status: 404)] {
            let (made, _) = await tries(of: error)
            #expect(made == 1, "\(error)")
        }
    }

    /// A read that took its time to fail (a timeout) is not tried again once the budget has passed.
    @Test func aSlowFailurePastTheBudgetIsNotTriedAgain() async {
        let (made, _) = await tries(of: Self.failure(.ambiguous), budget: .milliseconds(100), taking: .milliseconds(150))
        #expect(made == 1)
    }

    @Test func aCancelledLookupStopsTrying() async {
        let task = Task { await tries(of: Self.failure(.retryable, status: 502), taking: .milliseconds(50)) }
        task.cancel()
        let (made, succeeded) = await task.value
        #expect(made == 1 && !succeeded)
    }
}
