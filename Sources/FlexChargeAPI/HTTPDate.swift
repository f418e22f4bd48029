import Foundation

/// HTTP dates (RFC 9110 IMF-fixdate, the RFC 1123 form): `Sun, 06 Nov 1994 08:49:37 GMT`. The one formatter of
/// the package: `Retry-After` dates, webhooks' `x-fc-date` (read by the receiver, written by the sandbox).
public enum HTTPDate {
    /// The date `text` names, or nil when it is not an IMF-fixdate (always GMT).
    public static func parse(_ text: String) -> Date? {
        lock.withLock { formatter.date(from: text) }
    }

    /// `date` as an IMF-fixdate.
    public static func format(_ date: Date) -> String {
        lock.withLock { formatter.string(from: date) }
    }

    private static let lock = NSLock()

    /// Used under `lock` only: DateFormatter is not documented thread-safe on Linux.
    nonisolated(unsafe) private static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()
}
