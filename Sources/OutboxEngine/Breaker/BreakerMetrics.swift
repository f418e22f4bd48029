import Metrics

/// `flexcharge_outbox_breakers{environment, state}` (``WorkerMetrics/breakers``): how many circuit breakers are closed, open
/// or half_open per FlexCharge environment. Bounded: 2 environments x 3 states, never one series
/// per merchant (which merchants are held is in `flexcharge-outbox status` and the view
/// `flexcharge.breakers`).
enum BreakerMetrics {
    static let environments = ["sandbox", "production"]

    static func publish(_ counts: [(environment: String, state: String, count: Int)]) {
        for environment in environments {
            for phase in CircuitBreaker.Phase.allCases {
                let count = counts.first { $0.environment == environment && $0.state == phase.rawValue }?.count ?? 0
                Gauge(label: WorkerMetrics.breakers, dimensions: [("environment", environment), ("state", phase.rawValue)])
                    .record(count)
            }
        }
    }
}
