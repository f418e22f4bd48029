import Foundation

/// The breaker's thresholds and timings: the one home of these numbers. Every worker of a
/// deployment should run with the same policy (the state is shared through
/// `flexcharge.circuit_breakers`, see migrations/0013_circuit_breaker.sql).
///
/// Why consecutive failures rather than a failure ratio over a window: the breaker is for
/// FlexCharge failing *for everyone* (connect errors, resets, timeouts, 5xx). Then every call
/// fails, and with tens of calls in flight five consecutive failures arrive within a second. A
/// partial degradation (some calls fail, some succeed) is left to the per-event backoff: it never
/// trips the breaker, so a flaky minute does not stop a healthy merchant. Counting consecutive
/// failures needs one integer per breaker (no window of samples to share between workers), and a
/// success resets it, which the workers report only when the count is not already zero: nothing is
/// written while FlexCharge is healthy.
public struct BreakerPolicy: Sendable, Equatable {
    /// Consecutive outage failures (across all workers) that open the breaker.
    public var failureThreshold: Int
    /// A failure more than this after the previous one starts the count again at 1, so a
    /// low-volume merchant's occasional blips never add up to an outage.
    public var failureWindow: Duration
    /// How long the breaker stays open before one probe may go (and again after a failed probe).
    /// 30 s: 120 probe calls an hour per breaker, and an outage is noticed to be over within 30 s.
    public var probeInterval: Duration
    /// How long a probe may take before another worker may probe instead.
    public var probeTimeout: Duration
    /// How often a worker re-reads the breakers it does not own (the other workers' decisions).
    public var refreshInterval: Duration
    /// `false`: no breaker (every failure spends an attempt, as before 0013).
    public var enabled: Bool

    public init(
        failureThreshold: Int = 5, failureWindow: Duration = .seconds(60), probeInterval: Duration = .seconds(30),
        probeTimeout: Duration = .seconds(20), refreshInterval: Duration = .seconds(1), enabled: Bool = true
    ) {
        self.failureThreshold = max(1, failureThreshold)
        self.failureWindow = failureWindow
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.refreshInterval = refreshInterval
        self.enabled = enabled
    }

    /// The policy from `FLEXCHARGE_BREAKER_FAILURES`, `FLEXCHARGE_BREAKER_FAILURE_WINDOW_SECONDS`,
    /// `FLEXCHARGE_BREAKER_PROBE_SECONDS`, `FLEXCHARGE_BREAKER_PROBE_TIMEOUT_SECONDS`,
    /// `FLEXCHARGE_BREAKER_REFRESH_SECONDS` and `FLEXCHARGE_BREAKER=off`; unset or unparsable
    /// values keep their defaults.
    public init(environment: [String: String]) {
        func seconds(_ name: String) -> Duration? {
            environment[name].flatMap(Double.init).flatMap { $0.isFinite && $0 > 0 ? Duration.milliseconds(Int64($0 * 1000)) : nil }
        }
        let defaults = BreakerPolicy()
        self.init(
            failureThreshold: environment["FLEXCHARGE_BREAKER_FAILURES"].flatMap { Int($0) } ?? defaults.failureThreshold,
            failureWindow: seconds("FLEXCHARGE_BREAKER_FAILURE_WINDOW_SECONDS") ?? defaults.failureWindow,
            probeInterval: seconds("FLEXCHARGE_BREAKER_PROBE_SECONDS") ?? defaults.probeInterval,
            probeTimeout: seconds("FLEXCHARGE_BREAKER_PROBE_TIMEOUT_SECONDS") ?? defaults.probeTimeout,
            refreshInterval: seconds("FLEXCHARGE_BREAKER_REFRESH_SECONDS") ?? defaults.refreshInterval,
            enabled: environment["FLEXCHARGE_BREAKER"]?.lowercased() != "off")
    }
}

/// Which breaker: one per merchant and FlexCharge environment.
struct BreakerKey: Sendable, Hashable, CustomStringConvertible {
    let merchantID: String
    let environment: String
    init(merchantID: String, environment: String) {
        self.merchantID = merchantID
        self.environment = environment
    }
    var description: String { "\(merchantID)/\(environment)" }
}

/// One breaker's state, as stored in `flexcharge.circuit_breakers`, and its transitions (pure:
/// no database, no clock of its own; `now` is passed in). Unit-tested in CircuitBreakerTests.
///
///     closed --(failureThreshold consecutive outage failures)--> open
///     open --(retryAt passed; one worker wins the probe)--> halfOpen
///     halfOpen --(probe succeeded)--> closed
///     halfOpen --(probe failed, or its lease ran out and another worker probes)--> open / halfOpen
struct CircuitBreaker: Sendable, Equatable {
    enum Phase: String, Sendable, Equatable, CaseIterable {
        case closed, open
        case halfOpen = "half_open"
    }

    /// What a worker saw or wants.
    enum Input: Sendable, Equatable {
        /// FlexCharge answered a call (any status below 500 but 429: a 4xx is the merchant's own problem).
        case succeeded
        /// A connect error, reset, timeout or 5xx: FlexCharge may be down.
        case failed(reason: String)
        /// A worker asks to make the one probe call.
        case probeStarted(owner: String)
        /// The probe's result.
        case probeSucceeded(owner: String)
        case probeFailed(owner: String, reason: String)
    }

    var phase: Phase = .closed
    var failures: Int = 0
    var lastFailureAt: Date?
    var lastError: String?
    var trips: Int = 0
    var openedAt: Date?
    /// open: when a probe may go; halfOpen: when the probe's lease ends.
    var retryAt: Date?
    var probeOwner: String?
    var closedAt: Date?

    init() {}

    /// The state after `input`, or `nil` when nothing changes (nothing to write).
    func applying(_ input: Input, at now: Date, policy: BreakerPolicy) -> CircuitBreaker? {
        var next = self
        switch (phase, input) {
        case (.closed, .succeeded):
            guard failures > 0 else { return nil }
            next.failures = 0
        case (.closed, .failed(let reason)):
            let withinWindow = lastFailureAt.map { now.timeIntervalSince($0) <= policy.failureWindow.seconds } ?? false
            next.failures = withinWindow ? failures + 1 : 1
            next.lastFailureAt = now
            next.lastError = reason
            if next.failures >= policy.failureThreshold {
                next.open(at: now, policy: policy)
            }
        case (.open, .succeeded), (.open, .failed), (.halfOpen, .succeeded), (.halfOpen, .failed):
            // Calls that started before the breaker opened: the probe decides, not them.
            return nil
        case (.open, .probeStarted(let owner)), (.halfOpen, .probeStarted(let owner)):
            guard mayProbe(at: now) else { return nil }
            next.phase = .halfOpen
            next.probeOwner = owner
            next.retryAt = now.addingTimeInterval(policy.probeTimeout.seconds)
        case (.halfOpen, .probeSucceeded(let owner)) where owner == probeOwner:
            next = CircuitBreaker()
            next.trips = trips
            next.lastError = lastError
            next.lastFailureAt = lastFailureAt
            next.closedAt = now
        case (.halfOpen, .probeFailed(let owner, let reason)) where owner == probeOwner:
            next.lastError = reason
            next.lastFailureAt = now
            next.open(at: now, policy: policy)
        case (_, .probeStarted), (_, .probeSucceeded), (_, .probeFailed):
            // Closed already, or another worker's probe: not ours to decide.
            return nil
        }
        return next == self ? nil : next
    }

    private mutating func open(at now: Date, policy: BreakerPolicy) {
        if phase == .closed { openedAt = now }
        phase = .open
        trips += 1
        probeOwner = nil
        retryAt = now.addingTimeInterval(policy.probeInterval.seconds)
    }

    /// True when events of this breaker must not be sent or looked up now: whenever it is not
    /// closed (past `retryAt` too: then a probe, not an event, finds out whether FlexCharge is back).
    func isHolding(at now: Date) -> Bool {
        phase != .closed
    }

    /// True when a probe may start: open and its time has come, or a probe's lease ran out.
    func mayProbe(at now: Date) -> Bool {
        phase != .closed && (retryAt.map { $0 <= now } ?? true)
    }

    /// When an event this breaker holds should be tried again: the next probe time when open, a
    /// second from now while a probe is in flight (the probe's result decides soon).
    func holdUntil(at now: Date) -> Date {
        switch phase {
        case .closed: now
        case .open: max(retryAt ?? now, now)
        case .halfOpen: now.addingTimeInterval(1)
        }
    }
}

/// How a finished call counts for its breaker.
enum BreakerSignal: Sendable, Equatable {
    /// FlexCharge answered: it is up (a 4xx is the merchant's own problem).
    case up
    /// A connect error, reset, timeout or 5xx.
    case down(reason: String)
    /// Says nothing about FlexCharge: 429 (it asked us to slow down, with its own Retry-After), a
    /// missing configuration, a call cancelled by shutdown.
    case neutral

    /// The signal of a completion (see ``EventDelivery``): its outcome, failure class and status.
    static func of(_ completion: Completion) -> BreakerSignal {
        switch completion.outcome {
        case .succeeded, .awaitingOutcome: return .up
        default: break
        }
        switch completion.failureClass {
        case "retryable", "ambiguous":
            guard let status = completion.httpStatus else {
                return .down(reason: Self.reason(completion))
            }
            if (500...599).contains(status) { return .down(reason: Self.reason(completion)) }
            if status == 429 { return .neutral }
            return .up  // 408/409: FlexCharge answered; a 200 with a broken body too
        case "permanent", "unresolved":
            return .up
        case nil:
            // A lookup that decided to send again: FlexCharge answered it.
            if case .retry = completion.outcome, completion.httpStatus != nil { return .up }
            return .neutral
        default:
            return .neutral
        }
    }

    private static func reason(_ completion: Completion) -> String {
        let status = completion.httpStatus.map { "HTTP \($0)" } ?? "no response"
        return "\(completion.action.rawValue): \(status): \(String((completion.error ?? "").prefix(200)))"
    }
}
