import Metrics
import Synchronization

/// swift-metrics handles, created once per label and dimension values and reused: creating one is a registry
/// lookup under a lock, too costly per event or per request. Every metric recorded on a hot path (the worker's
/// calls, `serve`'s requests) takes its handle from here. Dimensions must be bounded values (see ``WorkerMetrics``).
public enum MetricHandles {
    /// A handle's label and its dimensions' values (a label always has the same dimension names): hashed as is,
    /// so finding a handle builds no string.
    private struct Key: Hashable {
        let label: String
        let values: [String]
    }

    private static let counters = Mutex<[Key: Counter]>([:])
    private static let timers = Mutex<[Key: Timer]>([:])
    private static let gauges = Mutex<[Key: Gauge]>([:])

    public static func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        cached(in: counters, label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    public static func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Timer {
        cached(in: timers, label, dimensions) { Timer(label: label, dimensions: dimensions) }
    }

    public static func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        cached(in: gauges, label, dimensions) { Gauge(label: label, dimensions: dimensions) }
    }

    /// The handle for `label` and `dimensions`, created on first use.
    private static func cached<Handle>(
        in cache: borrowing Mutex<[Key: Handle]>, _ label: String, _ dimensions: [(String, String)], create: () -> Handle
    ) -> Handle {
        let key = Key(label: label, values: dimensions.map(\.1))
        return cache.withLock { handles in
            if let existing = handles[key] { return existing }
            let created = create()
            handles[key] = created
            return created
        }
    }
}
