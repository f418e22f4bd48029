import Foundation

/// Parsing of the `Retry-After` response header (delay in seconds, or an HTTP-date).
enum RetryAfter {
    /// The delay the header asks for, measured from `now`; `nil` if absent or unparseable. Past dates give zero.
    static func parse(_ value: String?, now: Date = Date()) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) { return .seconds(max(0, seconds)) }
        guard let date = httpDateFormatter.date(from: value) else { return nil }
        return .milliseconds(max(0, Int((date.timeIntervalSince(now) * 1000).rounded())))
    }

    /// Formatter for IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (formatters are thread-safe for parsing).
    nonisolated(unsafe) static let httpDateFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }()
}
