import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

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
    @Option(help: "Only this site (the event's site_url, or its descriptor when it has none).") var site: String?
    @Option(help: "Only this descriptor.") var descriptor: String?
    @Option(help: "Only this channel: mit, cit_website or cit_call_center.") var channel: String?
    @Option(help: "Only events sent to this environment: sandbox or production.") var environment: String?
    @Option(help: "table, csv or json.") var format = "table"

    static var columns: [String] { DailyReport.columns }

    func run() async throws {
        let filter: DailyReport.Filter
        do {
            filter = try DailyReport.Filter(from: from, to: to, merchant: merchant, site: site, descriptor: descriptor,
                                            channel: channel, environment: environment)
        } catch .notADate {
            throw CLIFailure.badInput("--from and --to must be dates like 2026-11-26")
        } catch .fromAfterTo {
            throw CLIFailure.badInput("--from must not be after --to")
        } catch .unknownChannel(let channel) {
            throw CLIFailure.badInput("--channel must be mit, cit_website or cit_call_center, not \(channel)")
        } catch .unknownEnvironment(let environment) {
            throw CLIFailure.badInput("--environment must be sandbox or production, not \(environment)")
        }
        guard ["table", "csv", "json"].contains(format) else { throw CLIFailure.badInput("--format must be table, csv or json") }
        let rows = try await database.withSession { session in
            try await operatorCall { try await DailyReport.rows(session, filter) }
        }
        switch format {
        case "csv":
            print(DailyReport.csv(rows), terminator: "")
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

    /// A `YYYY-MM-DD` day (UTC), as the report reads it.
    static func day(_ text: String) -> Date? { DailyReport.day(text) }
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
