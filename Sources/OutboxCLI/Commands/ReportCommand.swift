import ArgumentParser
import Foundation
import LibPQ

/// `flexcharge-outbox report`: the numbers of `flexcharge.daily_report` (migrations/0016): events,
/// outcomes and the money rescued, gross and net of refunds, cancellations and chargebacks.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Events, FlexCharge outcomes and money rescued per merchant, site, descriptor, channel, origin, environment, test flag and day.",
        discussion: """
            The same numbers as the view flexcharge.daily_report: counted per event, never per \
            attempt (a retried event counts once). Days are UTC; --to is inclusive. Test traffic \
            (is_test) has rows of its own. approved_cents is the gross money rescued (captures \
            included); net_cents is what remains after refunds, cancellations and chargebacks, each \
            listed with its source event or webhook in the view flexcharge.money_adjustments. Money \
            is reported on the day and row of the order's evaluate.

            Examples:
              flexcharge-outbox report --from 2026-11-01 --to 2026-11-30
              flexcharge-outbox report --from 2026-11-26 --to 2026-11-26 --merchant shoes-r-us --format csv
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String
    @Option(help: "Last day, YYYY-MM-DD (UTC), inclusive.") var to: String
    @Option(help: "Only this merchant.") var merchant: String?
    @Option(help: "table, csv or json.") var format = "table"

    static let columns = [
        "day", "merchant_id", "site", "descriptor", "channel", "origin", "environment", "is_test", "events", "transmitted",
        "evaluated", "approved", "approved_cents", "declined", "challenge", "pending", "failed", "skipped", "dead", "cancelled",
        "expired", "refunded_cents", "cancelled_cents", "chargeback_cents", "net_cents", "unpriced_adjustments",
    ]

    func run() async throws {
        guard let fromDay = Self.day(from), let toDay = Self.day(to) else {
            throw CLIFailure.badInput("--from and --to must be dates like 2026-11-26")
        }
        guard fromDay <= toDay else { throw CLIFailure.badInput("--from must not be after --to") }
        guard ["table", "csv", "json"].contains(format) else { throw CLIFailure.badInput("--format must be table, csv or json") }
        let rows = try await database.withSession { session -> [[String]] in
            if let merchant, try await session.query("SELECT 1 FROM flexcharge.merchants WHERE merchant_id = $1", [merchant]).rows.isEmpty,
                try await session.query("SELECT 1 FROM flexcharge.outbox WHERE merchant_id = $1 LIMIT 1", [merchant]).rows.isEmpty
            {
                throw CLIFailure.badInput("unknown merchant \(merchant)")
            }
            let result = try await session.query(
                """
                SELECT \(Self.columns.map { "\($0)::text" }.joined(separator: ", "))
                  FROM flexcharge.daily_report
                 WHERE day BETWEEN $1::date AND $2::date AND ($3::text IS NULL OR merchant_id = $3)
                 ORDER BY day, merchant_id, site NULLS FIRST, descriptor NULLS FIRST, channel, origin NULLS FIRST, environment NULLS FIRST,
                          is_test
                """, [from, to, merchant])
            return result.rows.map { $0.values.map { $0 ?? "" } }
        }
        switch format {
        case "csv":
            print(TextTable(headers: Self.columns, rows: rows).csv())
        case "json":
            let objects = rows.map { row in
                Dictionary(uniqueKeysWithValues: zip(Self.columns, row).map { key, value -> (String, ReportValue) in
                    (key, key == "is_test" ? .bool(value == "true") : Int64(value).map(ReportValue.number) ?? (value.isEmpty ? .null : .text(value)))
                })
            }
            print(try jsonText(objects))
        default:
            print(rows.isEmpty ? "no events in that period" : TextTable(headers: Self.columns, rows: rows).render())
        }
    }

    static func day(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        guard let date = formatter.date(from: text), formatter.string(from: date) == text else { return nil }
        return date
    }
}

/// A JSON cell: number, boolean, text or null.
enum ReportValue: Encodable {
    case number(Int64), bool(Bool), text(String), null
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let n): try container.encode(n)
        case .bool(let b): try container.encode(b)
        case .text(let s): try container.encode(s)
        case .null: try container.encodeNil()
        }
    }
}
