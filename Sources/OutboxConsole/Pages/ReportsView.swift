import Foundation
import OutboxEngine

/// The markup of the report page: the filter form (a GET, so a report is a link), the totals, the
/// charts per day and the rows of `daily_report`.
enum ReportsView {
    /// The page lists at most this many rows; the CSV has them all.
    static let rowLimit = 500
    /// Up to this many days a day is a bar; a longer period is drawn as lines.
    static let barDays = 62
    /// Columns that hold numbers (aligned right).
    static let numeric = Set(DailyReport.columns.drop { $0 != "events" })

    static func page(query: ReportsQuery, merchants: [String], problem: String?, report: (DailyReport.Filter, [[String]])?) -> HTML {
        let problemHTML: HTML = problem.map { "<p class=\"error\" role=\"alert\" id=\"reports-problem\">\($0)</p>" } ?? .empty
        guard let (filter, rows) = report else {
            return form(query, merchants: merchants) + problemHTML
        }
        return form(query, merchants: merchants) + problemHTML + results(query: query, filter: filter, rows: rows)
    }

    static func form(_ query: ReportsQuery, merchants: [String]) -> HTML {
        func text(_ name: String, _ label: String, list: String? = nil) -> HTML {
            let listAttribute: HTML = list.map { " list=\"\($0)\"" } ?? .empty
            return """
                <div><label for="report-\(name)">\(label)</label>\
                <input type="text" id="report-\(name)" name="\(name)" value="\(query[name])"\(listAttribute) autocomplete="off"></div>
                """
        }
        func select(_ name: String, _ label: String, all: String, options: [String]) -> HTML {
            let items = options.map { option -> HTML in
                "<option value=\"\(option)\"\(query[name] == option ? HTML(" selected") : .empty)>\(option)</option>"
            }
            return """
                <div><label for="report-\(name)">\(label)</label>\
                <select id="report-\(name)" name="\(name)"><option value="">\(all)</option>\(items)</select></div>
                """
        }
        let merchantOptions = merchants.map { HTML("<option value=\"\($0)\"></option>") }
        return """
            <form method="get" action="/reports" id="reports-filter" aria-label="Report filters">
            <div class="form-grid">
            <div><label for="report-from">From (UTC day)</label><input type="date" id="report-from" name="from" value="\(query["from"])" required></div>
            <div><label for="report-to">To (UTC day, included)</label><input type="date" id="report-to" name="to" value="\(query["to"])" required></div>
            \(text("merchant", "Merchant", list: "report-merchants"))
            \(text("site", "Site"))
            \(text("descriptor", "Descriptor"))
            \(select("channel", "Channel", all: "all channels", options: PauseScope.channels))
            \(select("environment", "Environment", all: "both", options: PauseScope.environments))
            </div>
            <datalist id="report-merchants">\(merchantOptions)</datalist>
            <div class="actions"><button type="submit" class="primary">Show</button> <a href="/reports">Last \(ReportsQuery.defaultDays) days</a></div>
            </form>
            """
    }

    static func results(query: ReportsQuery, filter: DailyReport.Filter, rows: [[String]]) -> HTML {
        let column = { (name: String) in DailyReport.columns.firstIndex(of: name)! }
        let sum = { (name: String, subset: [[String]]) in subset.map { Int64($0[column(name)]) ?? 0 }.reduce(0, +) }
        let totals = ["events", "approved", "approved_cents", "net_cents", "refunded_cents", "chargeback_cents", "dead"].map { name -> HTML in
            "<div><dt>\(name)</dt><dd data-total=\"\(name)\">\(ChartValueFormat.count.exact(Double(sum(name, rows))))</dd></div>"
        }
        let days = filter.days
        let byDay = Dictionary(grouping: rows) { $0[column("day")] }
        let style: Chart.Style = days.count <= barDays ? .groupedBars : .lines
        let approved = Chart(
            id: "chart-approved", title: "Approved orders per day",
            summary: "Orders FlexCharge approved (rescued), per UTC day of their evaluate, for the filters above.",
            style: style, labelAxis: "day", valueAxis: "orders", labels: days,
            series: [ChartSeries(name: "approved", values: days.map { Double(sum("approved", byDay[$0] ?? [])) })])
        let cents = Chart(
            id: "chart-cents", title: "Cents rescued per day",
            summary: "Money rescued per UTC day in cents (all currencies added as they are): gross, and net of refunds, cancellations and chargebacks.",
            style: style, labelAxis: "day", valueAxis: "cents", labels: days,
            series: [ChartSeries(name: "gross (approved_cents)", values: days.map { Double(sum("approved_cents", byDay[$0] ?? [])) }),
                     ChartSeries(name: "net (net_cents)", values: days.map { Double(sum("net_cents", byDay[$0] ?? [])) })])
        let headers = DailyReport.columns.map { name -> HTML in
            "<th scope=\"col\"\(numeric.contains(name) ? HTML(" class=\"num\"") : .empty)>\(name)</th>"
        }
        let body = rows.prefix(rowLimit).map { row -> HTML in
            let cells = zip(DailyReport.columns, row).dropFirst().map { name, value -> HTML in
                "<td\(numeric.contains(name) ? HTML(" class=\"num\"") : .empty)>\(value)</td>"
            }
            return "<tr><th scope=\"row\">\(row[0])</th>\(cells)</tr>"
        }
        let shown: HTML = rows.count > rowLimit
            ? "<p class=\"muted\">The first \(rowLimit) of \(rows.count) rows; the CSV has them all.</p>" : .empty
        return """
            <section aria-labelledby="reports-totals-h"><h2 id="reports-totals-h">\(filter.from) to \(filter.to)</h2>
            <dl class="figures">\(totals)</dl>
            <p class="actions"><a class="button" id="reports-csv" href="/reports/report.csv?\(query.queryString)" download>Download CSV</a>
            <span class="muted">The same file as <code>flexcharge-outbox report --format csv</code> with these filters.</span></p>
            </section>
            <section aria-labelledby="reports-charts-h"><h2 id="reports-charts-h">Per day</h2>
            <div class="chart-grid">\(ChartRenderer.html(approved))\(ChartRenderer.html(cents))</div>
            </section>
            <section aria-labelledby="reports-rows-h"><h2 id="reports-rows-h">Rows</h2>
            <p class="muted">One row per day, merchant, site, descriptor, channel, origin, environment and test flag (<code>flexcharge.daily_report</code>): \
            events counted once however often they were retried; money on the day of the order's evaluate.</p>
            \(shown)
            <div class="table-wrap" role="region" tabindex="0" aria-label="Daily report rows"><table id="reports-rows" class="nowrap"><caption class="visually-hidden">Daily report rows</caption>
            <thead><tr>\(headers)</tr></thead>
            <tbody>\(rows.isEmpty ? HTML("<tr><td colspan=\"\(DailyReport.columns.count)\">No events in that period.</td></tr>") : HTML(body))</tbody>
            </table></div>
            </section>
            """
    }
}
