import Foundation
import Metrics

/// The worker's metrics, through swift-metrics (the CLI bootstraps Prometheus). Labels are
/// bounded dimensions only: lane, outcome, failure class, action, environment (sandbox,
/// production), evaluate decision (``Decision``'s cases), state. NEVER a merchant id, MID, order id,
/// event id, site or any other unbounded value (one series each would grow without end), and never
/// merchant secrets, tokens or card data. Per-merchant figures are in `status` and the views.
/// Handles are created once per label set and reused (``MetricHandles``).
enum WorkerMetrics {
    /// Circuit breakers per environment and state (published by Breaker/BreakerMetrics.swift).
    static let breakers = "flexcharge_outbox_breakers"

    static func claimed(_ events: [ClaimedEvent]) {
        var perLane: [String: Int] = [:]
        for event in events { perLane[event.lane.name, default: 0] += 1 }
        for (lane, count) in perLane {
            MetricHandles.counter("flexcharge_outbox_claimed_total", [("lane", lane)]).increment(by: count)
        }
    }

    static func recordCompletions(_ completions: [Completion]) {
        for completion in completions {
            MetricHandles.counter("flexcharge_outbox_completed_total", [
                ("outcome", completion.outcome.state), ("class", completion.failureClass ?? "none"),
                ("environment", completion.environment),
            ]).increment()
            MetricHandles.timer("flexcharge_outbox_call_duration_seconds", [
                ("action", completion.action.rawValue), ("environment", completion.environment),
            ]).recordNanoseconds(Int64(completion.finishedAt.timeIntervalSince(completion.startedAt) * 1e9))
        }
    }

    /// An evaluate's decision (`flexcharge_outbox_evaluate_decisions_total{environment, decision}`):
    /// only ``Decision``'s cases, or `none` when the attempt brought no decision (failed, retried).
    static func delivered(_ event: ClaimedEvent, _ completion: Completion) {
        guard event.kind == .evaluate else { return }
        let decision = completion.decision.flatMap(Decision.init(rawValue:))?.rawValue ?? "none"
        MetricHandles.counter("flexcharge_outbox_evaluate_decisions_total", [
            ("environment", completion.environment), ("decision", decision),
        ]).increment()
    }

    /// Tokens leased from the shared rate-limit buckets (`flexcharge_outbox_rate_limit_tokens_total`)
    /// and events given back for want of one (`flexcharge_outbox_rate_limit_waits_total`), per environment.
    static func rateLimitTokens(environment: String, granted: Int) {
        MetricHandles.counter("flexcharge_outbox_rate_limit_tokens_total", [("environment", environment)]).increment(by: granted)
    }

    static func rateLimitWait(environment: String) {
        MetricHandles.counter("flexcharge_outbox_rate_limit_waits_total", [("environment", environment)]).increment()
    }

    /// Events being called (`flexcharge_outbox_in_flight`) and claimed but waiting for a slot
    /// (`flexcharge_outbox_prefetched`).
    static func held(calling count: Int, queued waiting: Int) {
        MetricHandles.gauge("flexcharge_outbox_in_flight").record(count)
        MetricHandles.gauge("flexcharge_outbox_prefetched").record(waiting)
    }

    /// The queue gauges of one lane (whole queue, the same in every worker): pending depth, oldest
    /// pending age, evaluates awaiting their outcome, dead events.
    static func queue(_ lane: OutboxStore.LaneDepth) {
        Gauge(label: "flexcharge_outbox_queue_depth", dimensions: [("lane", lane.lane)]).record(lane.depth)
        Gauge(label: "flexcharge_outbox_oldest_pending_seconds", dimensions: [("lane", lane.lane)]).record(lane.oldestAgeSeconds)
        Gauge(label: "flexcharge_outbox_awaiting_outcome_events", dimensions: [("lane", lane.lane)]).record(lane.awaitingOutcome)
        Gauge(label: "flexcharge_outbox_dead_events", dimensions: [("lane", lane.lane)]).record(lane.dead)
    }
}
