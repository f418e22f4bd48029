@testable import OutboxEngine
import Testing

/// The database half of `/readyz`, without a database: one transition per change, never one per
/// probe.
@Suite struct DatabaseReadinessTests {
    @Test func oneFailedProbeTurnsItUnreadyAndOneAnswerTurnsItReadyAgain() {
        let start = ContinuousClock.now
        var readiness = DatabaseReadiness()
        #expect(readiness.reachable)
        let ok = readiness.probeSucceeded(now: start)
        #expect(ok == nil)
        let down = readiness.probeFailed(reason: "PostgreSQL did not answer within 2.0 seconds", now: start + .seconds(1))
        #expect(down == .becameUnreachable(reason: "PostgreSQL did not answer within 2.0 seconds"))
        #expect(!readiness.reachable)
        // Later failures change nothing to log, but keep the latest reason.
        let again = readiness.probeFailed(reason: "connection refused", now: start + .seconds(4))
        #expect(again == nil)
        #expect(readiness.lastFailure == "connection refused")
        #expect(readiness.failures == 2)
        let up = readiness.probeSucceeded(now: start + .seconds(16))
        #expect(up == .becameReachable(after: .seconds(15)))
        #expect(readiness.reachable)
        #expect(readiness.lastFailure == nil)
        let steady = readiness.probeSucceeded(now: start + .seconds(17))
        #expect(steady == nil)
    }

    @Test func workerHealthIsReadyOnlyWhileRunningAndReachable() {
        let health = WorkerHealth()
        #expect(!health.isReady)
        #expect(health.notReadyReason == "the worker is not running (starting or draining)")
        health.setReady(true)
        #expect(health.isReady)
        #expect(health.notReadyReason == nil)
        _ = health.databaseFailed("PostgreSQL did not answer within 2.0 seconds")
        #expect(!health.isReady)
        #expect(health.notReadyReason == "the database is not answering: PostgreSQL did not answer within 2.0 seconds")
        _ = health.databaseAnswered()
        #expect(health.isReady)
        health.setReady(false)
        #expect(!health.isReady)
    }
}
