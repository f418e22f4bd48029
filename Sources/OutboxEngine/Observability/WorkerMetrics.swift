import Foundation
import Metrics

/// The worker's metrics, through swift-metrics (the CLI bootstraps Prometheus). Labels are
/// lanes, outcomes and failure classes only: never merchant secrets, tokens or card data.
enum WorkerMetrics {
    static func claimed(_ events: [ClaimedEvent]) {
        for lane in Set(events.map(\.lane)) {
            Counter(label: "flexcharge_outbox_claimed_total", dimensions: [("lane", lane)])
                .increment(by: events.filter { $0.lane == lane }.count)
        }
    }

    static func recordCompletions(_ completions: [Completion]) {
        for completion in completions {
            Counter(label: "flexcharge_outbox_completed_total", dimensions: [
                ("outcome", completion.outcome.state), ("class", completion.failureClass ?? "none"),
            ]).increment()
            Timer(label: "flexcharge_outbox_call_duration_seconds", dimensions: [("action", completion.action.rawValue)])
                .recordNanoseconds(Int64(completion.finishedAt.timeIntervalSince(completion.startedAt) * 1e9))
        }
    }

    static func inFlight(_ count: Int) {
        Gauge(label: "flexcharge_outbox_in_flight").record(count)
    }

    static func queue(lane: String, depth: Int, oldestAgeSeconds: Double) {
        Gauge(label: "flexcharge_outbox_queue_depth", dimensions: [("lane", lane)]).record(depth)
        Gauge(label: "flexcharge_outbox_oldest_pending_seconds", dimensions: [("lane", lane)]).record(oldestAgeSeconds)
    }
}
