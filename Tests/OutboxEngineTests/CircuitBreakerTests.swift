import Foundation
import Testing
@testable import OutboxEngine

/// The breaker's state machine, without a database: every transition of ``CircuitBreaker``.
@Suite struct CircuitBreakerTests {
    let policy = BreakerPolicy(failureThreshold: 3, failureWindow: .seconds(60), probeInterval: .seconds(30), probeTimeout: .seconds(10))
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func after(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// Applies inputs in order, each at its time; nil transitions keep the state.
    func run(_ steps: [(CircuitBreaker.Input, Double)], from start: CircuitBreaker = CircuitBreaker()) -> CircuitBreaker {
        steps.reduce(start) { state, step in state.applying(step.0, at: after(step.1), policy: policy) ?? state }
    }

    @Test func consecutiveOutageFailuresOpenIt() {
        let two = run([(.failed(reason: "503"), 0), (.failed(reason: "503"), 1)])
        #expect(two.phase == .closed && two.failures == 2)
        #expect(!two.isHolding(at: after(1)))
        let three = run([(.failed(reason: "503"), 2)], from: two)
        #expect(three.phase == .open)
        #expect(three.trips == 1)
        #expect(three.openedAt == after(2))
        #expect(three.retryAt == after(32))
        #expect(three.lastError == "503")
        #expect(three.isHolding(at: after(3)))
        #expect(three.holdUntil(at: after(3)) == after(32))
    }

    @Test func aSuccessResetsTheCountAndAQuietBreakerWritesNothing() {
        let counting = run([(.failed(reason: "reset"), 0), (.failed(reason: "reset"), 1), (.succeeded, 2), (.failed(reason: "reset"), 3)])
        #expect(counting.phase == .closed && counting.failures == 1)
        // A success on a breaker that counts nothing is no change: the worker writes nothing.
        #expect(CircuitBreaker().applying(.succeeded, at: t0, policy: policy) == nil)
    }

    @Test func failuresFarApartDoNotAddUp() {
        let sparse = run([(.failed(reason: "x"), 0), (.failed(reason: "x"), 61), (.failed(reason: "x"), 122)])
        #expect(sparse.phase == .closed)
        #expect(sparse.failures == 1)
    }

    @Test func whileOpenCallsInFlightChangeNothingAndOnlyOneProbeGoes() {
        let open = run([(.failed(reason: "x"), 0), (.failed(reason: "x"), 0), (.failed(reason: "x"), 0)])
        #expect(open.applying(.succeeded, at: after(1), policy: policy) == nil)
        #expect(open.applying(.failed(reason: "y"), at: after(1), policy: policy) == nil)
        // Too early to probe.
        #expect(!open.mayProbe(at: after(29)))
        #expect(open.applying(.probeStarted(owner: "w1"), at: after(29), policy: policy) == nil)
        // At the probe time the first asker wins; a second asker is refused while the probe's lease runs.
        let probing = open.applying(.probeStarted(owner: "w1"), at: after(30), policy: policy)!
        #expect(probing.phase == .halfOpen && probing.probeOwner == "w1" && probing.retryAt == after(40))
        #expect(probing.isHolding(at: after(31)))
        #expect(probing.applying(.probeStarted(owner: "w2"), at: after(35), policy: policy) == nil)
        // Another worker's result is not taken.
        #expect(probing.applying(.probeSucceeded(owner: "w2"), at: after(35), policy: policy) == nil)
        // A probe whose lease ran out (its worker died) may be taken over.
        let takenOver = probing.applying(.probeStarted(owner: "w2"), at: after(41), policy: policy)!
        #expect(takenOver.probeOwner == "w2")
    }

    @Test func aSuccessfulProbeClosesAFailedOneReopens() {
        let open = run([(.failed(reason: "x"), 0), (.failed(reason: "x"), 0), (.failed(reason: "x"), 0)])
        let probing = open.applying(.probeStarted(owner: "w1"), at: after(30), policy: policy)!
        let reopened = probing.applying(.probeFailed(owner: "w1", reason: "probe: 503"), at: after(31), policy: policy)!
        #expect(reopened.phase == .open)
        #expect(reopened.trips == 2)
        #expect(reopened.openedAt == t0)  // open since the first trip
        #expect(reopened.retryAt == after(61))
        #expect(reopened.probeOwner == nil)
        let closed = reopened.applying(.probeStarted(owner: "w3"), at: after(61), policy: policy)!
            .applying(.probeSucceeded(owner: "w3"), at: after(62), policy: policy)!
        #expect(closed.phase == .closed)
        #expect(closed.failures == 0)
        #expect(closed.closedAt == after(62))
        #expect(closed.trips == 2)
        #expect(!closed.isHolding(at: after(62)))
        // Closed again: the next outage needs the full threshold again.
        let oneMore = closed.applying(.failed(reason: "x"), at: after(63), policy: policy)!
        #expect(oneMore.phase == .closed && oneMore.failures == 1)
    }

    @Test func probeResultsOnAClosedBreakerAreIgnored() {
        #expect(CircuitBreaker().applying(.probeStarted(owner: "w"), at: t0, policy: policy) == nil)
        #expect(CircuitBreaker().applying(.probeFailed(owner: "w", reason: "x"), at: t0, policy: policy) == nil)
    }

    @Test func whatCountsAsAnOutage() {
        func completion(_ outcome: Completion.Outcome, _ failureClass: String?, _ status: Int?) -> Completion {
            Completion(eventID: 1, attempt: 1, action: .send, environment: "sandbox", startedAt: t0, finishedAt: t0,
                       httpStatus: status, failureClass: failureClass, error: "e", outcome: outcome)
        }
        let retry = Completion.Outcome.retry(at: t0, action: .send)
        #expect(BreakerSignal.of(completion(.succeeded, nil, 200)) == .up)
        #expect(BreakerSignal.of(completion(.awaitingOutcome, nil, 200)) == .up)
        // A merchant's own validation error: FlexCharge is up.
        #expect(BreakerSignal.of(completion(.failed, "permanent", 400)) == .up)
        #expect(BreakerSignal.of(completion(.failed, "permanent", 401)) == .up)
        // Connect errors, resets, timeouts (no status) and 5xx: down.
        for (failureClass, status) in [("retryable", nil), ("ambiguous", nil), ("retryable", 503), ("ambiguous", 500), ("retryable", 502)] as [(String, Int?)] {
            guard case .down = BreakerSignal.of(completion(retry, failureClass, status)) else {
                Issue.record("\(failureClass) \(String(describing: status)) should count as an outage")
                continue
            }
        }
        // Exhausted attempts after a 5xx still say FlexCharge is down.
        if case .down = BreakerSignal.of(completion(.dead, "retryable", 503)) {} else { Issue.record("dead after 503") }
        // 429 carries its own Retry-After; a configuration problem says nothing about FlexCharge.
        #expect(BreakerSignal.of(completion(retry, "retryable", 429)) == .neutral)
        #expect(BreakerSignal.of(completion(.failed, "config", nil)) == .neutral)
        // 408/409 and a 200 with a broken body: FlexCharge answered.
        #expect(BreakerSignal.of(completion(retry, "retryable", 409)) == .up)
        #expect(BreakerSignal.of(completion(retry, "ambiguous", 200)) == .up)
    }

    @Test func policyFromTheEnvironment() {
        let policy = BreakerPolicy(environment: [
            "FLEXCHARGE_BREAKER_FAILURES": "8", "FLEXCHARGE_BREAKER_PROBE_SECONDS": "0.5",
            "FLEXCHARGE_BREAKER_FAILURE_WINDOW_SECONDS": "nonsense",
        ])
        #expect(policy.failureThreshold == 8)
        #expect(policy.probeInterval == .milliseconds(500))
        #expect(policy.failureWindow == BreakerPolicy().failureWindow)
        #expect(policy.enabled)
        #expect(!BreakerPolicy(environment: ["FLEXCHARGE_BREAKER": "off"]).enabled)
        #expect(BreakerPolicy(environment: ["FLEXCHARGE_BREAKER_FAILURES": "0"]).failureThreshold == 1)
    }
}
