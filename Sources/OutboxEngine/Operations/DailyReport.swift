import Foundation
import LibPQ

/// The rows of `flexcharge.daily_report` (migrations/0016) for a period and filters, and their CSV:
/// the one home of what `flexcharge-outbox report` prints and the console's report page shows and
/// downloads, so the two CSVs are the same bytes.
public enum DailyReport {
    /// The view's columns, in its order; every cell is read as PostgreSQL's text of the value.
    public static let columns = [
        "day", "merchant_id", "site", "descriptor", "channel", "origin", "environment", "is_test", "events", "transmitted",
        "evaluated", "approved", "approved_cents", "declined", "challenge", "pending", "failed", "skipped", "dead", "cancelled",
        "expired", "refunded_cents", "cancelled_cents", "chargeback_cents", "net_cents", "unpriced_adjustments",
    ]

    /// What a report covers: the days (UTC, `to` inclusive) and, optionally, one merchant, site,
    /// descriptor, channel (the merchant's switch names: mit, cit_website, cit_call_center) and
    /// environment.
    public struct Filter: Sendable, Equatable {
        public let from: String, to: String
        public let merchant: String?, site: String?, descriptor: String?, channel: String?, environment: String?

        /// Refuses a day that is not a date like 2026-11-26, `from` after `to`, or a channel or
        /// environment that does not exist. Empty optional filters mean "all".
        public init(from: String, to: String, merchant: String? = nil, site: String? = nil, descriptor: String? = nil,
                    channel: String? = nil, environment: String? = nil) throws(FilterError) {
            guard let fromDay = DailyReport.day(from), let toDay = DailyReport.day(to) else { throw .notADate }
            guard fromDay <= toDay else { throw .fromAfterTo }
            let blank = { (text: String?) in text.flatMap { $0.isEmpty ? nil : $0 } }
            if let channel = blank(channel), !PauseScope.channels.contains(channel) { throw .unknownChannel(channel) }
            if let environment = blank(environment), !PauseScope.environments.contains(environment) {
                throw .unknownEnvironment(environment)
            }
            self.from = from
            self.to = to
            self.merchant = blank(merchant)
            self.site = blank(site)
            self.descriptor = blank(descriptor)
            self.channel = blank(channel)
            self.environment = blank(environment)
        }

        /// Every day of the period, in order.
        public var days: [String] {
            guard let first = DailyReport.day(from), let last = DailyReport.day(to) else { return [] }
            return stride(from: first.timeIntervalSince1970, through: last.timeIntervalSince1970, by: 86400).map {
                DailyReport.dayText(Date(timeIntervalSince1970: $0))
            }
        }
    }

    /// Why a filter was refused; each front end words it (the CLI names its options).
    public enum FilterError: Error, Sendable, Equatable {
        case notADate, fromAfterTo, unknownChannel(String), unknownEnvironment(String)
    }

    /// The report's rows, ordered by day and the grouping columns; NULL cells are empty strings.
    /// Refuses (``OperatorError``) a merchant that is neither enrolled nor has any event.
    public static func rows(_ session: PGSession, _ filter: Filter) async throws -> [[String]] {
        if let merchant = filter.merchant,
            try await session.query("SELECT 1 FROM flexcharge.merchants WHERE merchant_id = $1", [merchant]).rows.isEmpty,
            try await session.query("SELECT 1 FROM flexcharge.outbox WHERE merchant_id = $1 LIMIT 1", [merchant]).rows.isEmpty
        {
            throw OperatorError("unknown merchant \(merchant)")
        }
        let result = try await session.query(
            """
            SELECT \(columns.map { "\($0)::text" }.joined(separator: ", "))
              FROM flexcharge.daily_report
             WHERE day BETWEEN $1::date AND $2::date AND ($3::text IS NULL OR merchant_id = $3)
               AND ($4::text IS NULL OR site = $4) AND ($5::text IS NULL OR descriptor = $5)
               AND ($6::text IS NULL OR flexcharge.switch_of(channel, origin) = $6)
               AND ($7::text IS NULL OR environment = $7)
             ORDER BY day, merchant_id, site NULLS FIRST, descriptor NULLS FIRST, channel, origin NULLS FIRST, environment NULLS FIRST,
                      is_test
            """, [filter.from, filter.to, filter.merchant, filter.site, filter.descriptor, filter.channel, filter.environment])
        return result.rows.map { $0.values.map { $0 ?? "" } }
    }

    /// The columns whose text the gateway chose (merchant id, site, descriptor): the CSV defuses them.
    static let gatewayTextColumns: Set<Int> = Set(["merchant_id", "site", "descriptor"].compactMap { columns.firstIndex(of: $0) })

    /// The rows as RFC 4180 CSV with a header line, each line ending in a newline: exactly what
    /// `report --format csv` writes to stdout and the console sends as a download.
    ///
    /// A report is opened in spreadsheets, and a cell starting with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return is read there as a formula (CSV injection). The gateway's own text (merchant
    /// id, site, descriptor) starting so gets a leading `'`, which spreadsheets show as text; numbers
    /// (a negative net_cents) are left as they are.
    public static func csv(_ rows: [[String]]) -> String {
        func field(_ value: String, column: Int) -> String {
            var value = value
            if gatewayTextColumns.contains(column), let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
            return value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
        return ([columns] + rows).map { row in
            row.enumerated().map { field($0.element, column: $0.offset) }.joined(separator: ",") + "\n"
        }.joined()
    }

    /// `2026-11-26` as midnight UTC; nil for anything else (also for 2026-02-30).
    public static func day(_ text: String) -> Date? {
        guard let date = dayFormatter().date(from: text), dayText(date) == text else { return nil }
        return date
    }

    /// A date's UTC day, `2026-11-26`.
    public static func dayText(_ date: Date) -> String { dayFormatter().string(from: date) }

    private static func dayFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter
    }
}
