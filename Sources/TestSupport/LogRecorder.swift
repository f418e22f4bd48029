import Logging
import Synchronization

/// Keeps every log line (level, message, metadata, source, file) of the loggers it makes, so a
/// test can scan them for secrets and card numbers.
public final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    public init() {}

    /// A logger at trace level whose every line is recorded.
    public var logger: Logger { Logger(label: "recorded", factory: { _ in Handler(recorder: self) }) }

    /// Everything recorded so far.
    public var all: [String] { lines.withLock { $0 } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.lines.withLock { $0.append("\(event.level) \(event.message) \(merged) \(event.source) \(event.file)") }
        }
    }
}
