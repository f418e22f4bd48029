import Foundation
import HTTPTypes
import Hummingbird
import LibPQ
import NIOCore
import OutboxEngine

/// `/reports`: `flexcharge.daily_report` per merchant, site, descriptor, channel, environment and
/// day, filtered; charts of approved orders and cents rescued per day; and `/reports/report.csv`,
/// the same bytes as `flexcharge-outbox report --format csv` with the same filters (both written by
/// ``DailyReport``).
enum ReportsArea: ConsoleArea {
    static let navigation: ConsoleNavigation? = ConsoleNavigation(
        title: "Reports", path: "/reports", order: 40, summary: "Events, approvals and money rescued per day, with CSV")

    static var assets: [ConsoleAsset] { [ChartAssets.stylesheet] }

    static func register(_ routes: ConsoleRoutes) {
        routes.get("/reports") { request, _ in
            let query = ReportsQuery(FormFields(urlEncoded: request.uri.query ?? ""))
            let page = { (body: HTML, status: HTTPResponse.Status) in
                ConsolePage(title: "Reports", body: body, status: status, stylesheets: [ChartAssets.stylesheet.name])
            }
            let merchants = try await routes.services.withSession { session in
                try await session.query("SELECT merchant_id FROM flexcharge.merchants ORDER BY merchant_id").rows.map {
                    try $0.decode("merchant_id", as: String.self)
                }
            }
            let filter: DailyReport.Filter
            do {
                filter = try query.filter()
            } catch let error as ConsoleError {
                return page(ReportsView.page(query: query, merchants: merchants, problem: error.message, report: nil), .badRequest)
            }
            do {
                let rows = try await routes.services.withSession { try await DailyReport.rows($0, filter) }
                return page(ReportsView.page(query: query, merchants: merchants, problem: nil, report: (filter, rows)), .ok)
            } catch let error as OperatorError {
                return page(ReportsView.page(query: query, merchants: merchants, problem: error.description, report: nil), .badRequest)
            }
        }
        routes.get("/reports/report.csv") { request, _ in
            let filter = try ReportsQuery(FormFields(urlEncoded: request.uri.query ?? "")).filter()
            let rows = try await ConsoleError.refusing { try await routes.services.withSession { try await DailyReport.rows($0, filter) } }
            return ReportsCSV(filter: filter, text: DailyReport.csv(rows))
        }
    }
}

/// The report's filters as the page's form and links carry them (empty: all).
struct ReportsQuery: Sendable {
    static let fields = ["from", "to", "merchant", "site", "descriptor", "channel", "environment"]
    /// Without dates the page shows the last 14 days (UTC) up to today.
    static let defaultDays = 14

    var values: [String: String]

    /// From the query string (a GET form: `+` is a space).
    init(_ parameters: FormFields) {
        var values: [String: String] = [:]
        for name in Self.fields {
            if let value = parameters[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { values[name] = value }
        }
        if values["from"] == nil && values["to"] == nil {
            let today = Date()
            values["to"] = DailyReport.dayText(today)
            values["from"] = DailyReport.dayText(today.addingTimeInterval(-86400 * Double(Self.defaultDays - 1)))
        }
        self.values = values
    }

    subscript(_ name: String) -> String? { values[name] }

    /// The engine's filter, or a 400 that says what to fix.
    func filter() throws(ConsoleError) -> DailyReport.Filter {
        do {
            return try DailyReport.Filter(
                from: values["from"] ?? "", to: values["to"] ?? "", merchant: values["merchant"], site: values["site"],
                descriptor: values["descriptor"], channel: values["channel"], environment: values["environment"])
        } catch {
            switch error {
            case .notADate: throw .badRequest("From and To must be dates like 2026-11-26.")
            case .fromAfterTo: throw .badRequest("From must not be after To.")
            case .unknownChannel(let channel): throw .badRequest("Channel must be mit, cit_website or cit_call_center, not \(channel).")
            case .unknownEnvironment(let environment): throw .badRequest("Environment must be sandbox or production, not \(environment).")
            }
        }
    }

    /// `from=…&to=…&merchant=…` for a link to the same report (the CSV download).
    var queryString: String {
        Self.fields.compactMap { name in
            values[name].map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? $0)" }
        }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
}

/// The CSV download: `text/csv`, an attachment named after the period.
struct ReportsCSV: ResponseGenerator {
    let filter: DailyReport.Filter
    let text: String

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8",
                .contentDisposition: "attachment; filename=\"flexcharge-report-\(filter.from)-\(filter.to).csv\"",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
