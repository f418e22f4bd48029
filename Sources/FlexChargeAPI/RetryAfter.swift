import Foundation

/// Parsing of the `Retry-After` response header (delay in seconds, or an HTTP-date), bounded.
///
/// The header comes from outside: a value that is negative, not a number, not finite, or not a date is
/// ignored; a delay longer than ``maximum`` is cut to it. ``read(_:now:)`` also says why, for the error message.
public enum RetryAfter {
    /// The longest wait a `Retry-After` header can impose (one hour). The one cap: every delay taken from the
    /// header, for events and for outcome lookups, goes through ``read(_:now:)``.
    public static let maximum: Duration = .seconds(3600)

    /// The header's delay and, when the value was not used as sent, why.
    public struct Reading: Sendable, Equatable {
        /// The delay to honour, at most ``RetryAfter/maximum``; nil when absent or ignored.
        public var delay: Duration?
        /// Set when the header was ignored or capped, e.g. `Retry-After "-5" ignored (not a delay)`.
        public var note: String?
    }

    /// The delay the header asks for, measured from `now`; `nil` if absent or unusable. Past dates give zero.
    static func parse(_ value: String?, now: Date = Date()) -> Duration? {
        read(value, now: now).delay
    }

    /// Reads one header value (the first one, when a response repeats the header).
    static func read(_ value: String?, now: Date = Date()) -> Reading {
        guard let raw = value else { return Reading(delay: nil, note: nil) }
        let text = raw.trimmingCharacters(in: .whitespaces)
        let maximumSeconds = Double(maximum.components.seconds)
        let seconds: Double
        if !text.isEmpty, text.utf8.count <= 64, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // delay-seconds = 1*DIGIT; any number of digits (a Double never overflows here, it only loses precision).
            seconds = Double(text) ?? .infinity
        } else if text.utf8.count <= 64, let date = HTTPDate.parse(text) {
            seconds = max(0, date.timeIntervalSince(now))
        } else {
            return Reading(delay: nil, note: "Retry-After \(SafeText.forLog(raw, limit: 40)) ignored (not a delay)")
        }
        guard seconds.isFinite, seconds <= maximumSeconds else {
            return Reading(delay: maximum,
                           note: "Retry-After \(SafeText.forLog(raw, limit: 40)) capped at \(Int(maximumSeconds)) s")
        }
        return Reading(delay: .milliseconds(Int64((seconds * 1000).rounded())), note: nil)
    }
}
