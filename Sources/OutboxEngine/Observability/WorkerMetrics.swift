import Foundation
import Metrics
import Synchronization

/// The worker's metrics, through swift-metrics (the CLI bootstraps Prometheus). Labels are
/// bounded dimensions only: lane, outcome, failure class, action, environment (sandbox,
/// production), evaluate decision (``Decision``'s cases), state. NEVER a merchant id, MID, order id,
/// event id, site or any other unbounded value (one series each would grow without end), and never
/// merchant secrets, tokens or card data. Per-merchant figures are in `status` and the views.
/// Handles are created once per label set and reused: creating one is a registry lookup under a
/// lock, too costly to do per event.
enum WorkerMetrics {
    /// A handle's label and its dimensions' values (a label always has the same dimension names): hashed as is,
    /// so finding a handle builds no string.
    private struct HandleKey: Hashable {
        let label: String
        let values: [String]
    }

    private static let counters = Mutex<[HandleKey: Counter]>([:])
    private static let timers = Mutex<[HandleKey: Timer]>([:])
    private static let gauges = Mutex<[HandleKey: Gauge]>([:])
    /// Circuit breakers per environment and state (published by Breaker/BreakerMetrics.swift).
    static let breakers = "flexcharge_outbox_breakers"

    static func claimed(_ events: [ClaimedEvent]) {
        var perLane: [String: Int] = [:]
        for event in events { perLane[event.lane.name, default: 0] += 1 }
        for (lane, count) in perLane {
            counter("flexcharge_outbox_claimed_total", [("lane", lane)]).increment(by: count)
        }
    }

    static func recordCompletions(_ completions: [Completion]) {
        for completion in completions {
            counter("flexcharge_outbox_completed_total", [
                ("outcome", completion.outcome.state), ("class", completion.failureClass ?? "none"),
                ("environment", completion.environment),
            ]).increment()
            timer("flexcharge_outbox_call_duration_seconds", [
                ("action", completion.action.rawValue), ("environment", completion.environment),
            ]).recordNanoseconds(Int64(completion.finishedAt.timeIntervalSince(completion.startedAt) * 1e9))
        }
    }

    /// An evaluate's decision (`flexcharge_outbox_evaluate_decisions_total{environment, decision}`):
    /// only ``Decision``'s cases, or `none` when the attempt brought no decision (failed, retried).
    static func delivered(_ event: ClaimedEvent, _ completion: Completion) {
        guard event.kind == .evaluate else { return }
        let decision = completion.decision.flatMap(Decision.init(rawValue:))?.rawValue ?? "none"
        counter("flexcharge_outbox_evaluate_decisions_total", [
            ("environment", completion.environment), ("decision", decision),
        ]).increment()
    }

    /// Tokens leased from the shared rate-limit buckets (`flexcharge_outbox_rate_limit_tokens_total`)
    /// and events given back for want of one (`flexcharge_outbox_rate_limit_waits_total`), per environment.
    static func rateLimitTokens(environment: String, granted: Int) {
        counter("flexcharge_outbox_rate_limit_tokens_total", [("environment", environment)]).increment(by: granted)
    }

    static func rateLimitWait(environment: String) {
        counter("flexcharge_outbox_rate_limit_waits_total", [("environment", environment)]).increment()
    }

    /// Events being called (`flexcharge_outbox_in_flight`) and claimed but waiting for a slot
    /// (`flexcharge_outbox_prefetched`).
    static func held(calling count: Int, queued waiting: Int) {
        cached(in: gauges, "flexcharge_outbox_in_flight", []) { Gauge(label: "flexcharge_outbox_in_flight") }.record(count)
        cached(in: gauges, "flexcharge_outbox_prefetched", []) { Gauge(label: "flexcharge_outbox_prefetched") }.record(waiting)
    }

    /// The queue gauges of one lane (whole queue, the same in every worker): pending depth, oldest
    /// pending age, evaluates awaiting their outcome, dead events.
    static func queue(_ lane: OutboxStore.LaneDepth) {
        Gauge(label: "flexcharge_outbox_queue_depth", dimensions: [("lane", lane.lane)]).record(lane.depth)
        Gauge(label: "flexcharge_outbox_oldest_pending_seconds", dimensions: [("lane", lane.lane)]).record(lane.oldestAgeSeconds)
        Gauge(label: "flexcharge_outbox_awaiting_outcome_events", dimensions: [("lane", lane.lane)]).record(lane.awaitingOutcome)
        Gauge(label: "flexcharge_outbox_dead_events", dimensions: [("lane", lane.lane)]).record(lane.dead)
    }

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        cached(in: counters, label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        cached(in: timers, label, dimensions) { Timer(label: label, dimensions: dimensions) }
    }

    /// The handle for `label` and `dimensions`, created on first use.
    private static func cached<Handle>(
        in cache: borrowing Mutex<[HandleKey: Handle]>, _ label: String, _ dimensions: [(String, String)], create: () -> Handle
    ) -> Handle {
        let key = HandleKey(label: label, values: dimensions.map(\.1))
        return cache.withLock { handles in
            if let existing = handles[key] { return existing }
            let created = create()
            handles[key] = created
            return created
        }
    }
}
