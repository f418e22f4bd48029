import Foundation
import Metrics
import Synchronization

/// The worker's metrics, through swift-metrics (the CLI bootstraps Prometheus). Labels are
/// lanes, outcomes and failure classes only: never merchant secrets, tokens or card data.
/// Handles are created once per label set and reused: creating one is a registry lookup under a
/// lock, too costly to do per event.
enum WorkerMetrics {
    private static let counters = Mutex<[String: Counter]>([:])
    private static let timers = Mutex<[String: Timer]>([:])
    private static let gauges = Mutex<[String: Gauge]>([:])
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
            ]).increment()
            timer("flexcharge_outbox_call_duration_seconds", [("action", completion.action.rawValue)])
                .recordNanoseconds(Int64(completion.finishedAt.timeIntervalSince(completion.startedAt) * 1e9))
        }
    }

    /// Events being called (`flexcharge_outbox_in_flight`) and claimed but waiting for a slot
    /// (`flexcharge_outbox_prefetched`).
    static func held(calling count: Int, queued waiting: Int) {
        cached(in: gauges, "flexcharge_outbox_in_flight", []) { Gauge(label: "flexcharge_outbox_in_flight") }.record(count)
        cached(in: gauges, "flexcharge_outbox_prefetched", []) { Gauge(label: "flexcharge_outbox_prefetched") }.record(waiting)
    }

    static func queue(lane: String, depth: Int, oldestAgeSeconds: Double) {
        Gauge(label: "flexcharge_outbox_queue_depth", dimensions: [("lane", lane)]).record(depth)
        Gauge(label: "flexcharge_outbox_oldest_pending_seconds", dimensions: [("lane", lane)]).record(oldestAgeSeconds)
    }

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        cached(in: counters, label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        cached(in: timers, label, dimensions) { Timer(label: label, dimensions: dimensions) }
    }

    /// The handle for `label` and `dimensions`, created on first use.
    private static func cached<Handle>(
        in cache: borrowing Mutex<[String: Handle]>, _ label: String, _ dimensions: [(String, String)], create: () -> Handle
    ) -> Handle {
        let key = dimensions.isEmpty ? label : label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return cache.withLock { handles in
            if let existing = handles[key] { return existing }
            let created = create()
            handles[key] = created
            return created
        }
    }
}
