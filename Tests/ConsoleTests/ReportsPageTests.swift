import Foundation
import LibPQ
import OutboxEngine
import Testing
import TestSupport

@testable import OutboxConsole

/// The report page over real HTTP on ``SeededDataset``: the CSV download is byte for byte what
/// `flexcharge-outbox report --format csv` prints for the same filters (the CLI run as a process on
/// the same database), the charts have a bar per day, and bad filters are refused with a reason.
@Suite struct ReportsPageTests {
    /// Filters as (CLI options, query string).
    static let filters: [([String], String)] = [
        (["--from", "2026-11-20", "--to", "2026-11-20"], "from=2026-11-20&to=2026-11-20"),
        (["--from", "2026-11-19", "--to", "2026-11-21", "--merchant", "m1"], "from=2026-11-19&to=2026-11-21&merchant=m1"),
        (["--from", "2026-11-20", "--to", "2026-11-21", "--channel", "mit"], "from=2026-11-20&to=2026-11-21&channel=mit"),
        (["--from", "2026-11-20", "--to", "2026-11-21", "--channel", "cit_call_center"], "from=2026-11-20&to=2026-11-21&channel=cit_call_center"),
        (["--from", "2026-11-20", "--to", "2026-11-21", "--environment", "sandbox", "--site", "b.example"],
         "from=2026-11-20&to=2026-11-21&environment=sandbox&site=b.example"),
        (["--from", "2026-11-01", "--to", "2026-11-30", "--descriptor", "D1"], "from=2026-11-01&to=2026-11-30&descriptor=D1&channel=&environment="),
        (["--from", "2026-10-01", "--to", "2026-10-31"], "from=2026-10-01&to=2026-10-31"),
    ]

    @Test func theCSVDownloadIsTheCLIsCSVByteForByte() async throws {
        try await RunningConsole.with { console in
            // A descriptor that CSV must quote, on an event of its own.
            try await console.withDatabase { session in
                try await SeededDataset.seed(session)
                let id: Int64 = try await session.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload)
                    VALUES ('transmit', 'm2', 'q1', 'cit', 'website', 'c.example', 'ACME, "Shoes"', '{"transaction": {"amount": 100}}')
                    RETURNING id
                    """).first!.decode("id")
                try await session.execute("UPDATE flexcharge.outbox SET created_at = '2026-11-21 09:00+00' WHERE id = $1", [id])
            }
            try await console.addAccount("vera", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("vera")
            var nonEmpty = 0
            for (options, query) in Self.filters + [(["--from", "2026-11-21", "--to", "2026-11-21", "--descriptor", #"ACME, "Shoes""#],
                                                     "from=2026-11-21&to=2026-11-21&descriptor=ACME%2C+%22Shoes%22")] {
                let cli = try await runCLI(["report", "--format", "csv"] + options, environment: ["DATABASE_URL": console.db.url])
                #expect(cli.status == 0, "\(options): \(cli.stderr)")
                let download = try await browser.get("/reports/report.csv?\(query)")
                #expect(download.status == 200, "\(query)")
                #expect(download.body == cli.stdout, "\(query)")
                #expect(download.header("Content-Type") == "text/csv; charset=utf-8")
                #expect(download.header("Content-Disposition")?.hasPrefix("attachment; filename=\"flexcharge-report-") == true)
                #expect(download.body.hasPrefix(DailyReport.columns.joined(separator: ",") + "\n"))
                if download.body.split(separator: "\n").count > 1 { nonEmpty += 1 }
            }
            // Every filter but October's selects rows (so equality is not two empty files), the quoted descriptor too.
            #expect(nonEmpty == 7)
            let quoted = try await browser.get("/reports/report.csv?from=2026-11-21&to=2026-11-21&descriptor=ACME%2C+%22Shoes%22")
            #expect(quoted.body.contains(#","ACME, ""Shoes""",cit,website,"#))
            // The page's own download link carries the page's filters.
            let page = try await browser.get("/reports?from=2026-11-20&to=2026-11-21&merchant=m2")
            #expect(page.body.contains("href=\"/reports/report.csv?from=2026-11-20&amp;to=2026-11-21&amp;merchant=m2\""))
        }
    }

    @Test func thePageChartsApprovalsAndCentsPerDayAndListsTheRows() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await SeededDataset.seed($0) }
            try await console.addAccount("vera", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("vera")
            let page = try await browser.get("/reports?from=2026-11-19&to=2026-11-21")
            #expect(page.status == 200)
            let html = page.body
            let figure = { (id: String) in ChartsTests.figure(id, in: html) }
            let count = { (needle: String, text: String) in ChartsTests.occurrences(needle, in: text) }
            // Three days: a bar each; gross and net side by side.
            #expect(count("<rect class=\"chart-bar\"", figure("chart-approved")) == 3)
            #expect(count("<rect class=\"chart-bar\"", figure("chart-cents")) == 6)
            // The hand-computed numbers of ReportCommandTests: 2 approved for 3500 cents on the 20th, 1 for 4200 on the 21st.
            #expect(figure("chart-approved").contains("<title>2026-11-20, approved: 2</title>"))
            #expect(figure("chart-approved").contains("<title>2026-11-19, approved: 0</title>"))
            #expect(figure("chart-cents").contains("<title>2026-11-20, gross (approved_cents): 3,500</title>"))
            #expect(figure("chart-cents").contains("<title>2026-11-21, net (net_cents): 4,200</title>"))
            #expect(html.contains("<dd data-total=\"approved_cents\">7,700</dd>"))
            #expect(html.contains("<dd data-total=\"events\">10</dd>"))
            // One row per view row, with a row header and the numbers right-aligned.
            let table = html.components(separatedBy: "<table id=\"reports-rows\"")[1].components(separatedBy: "</table>")[0]
            #expect(count("<th scope=\"row\">", table) == 5)
            #expect(count("<th scope=\"col\"", table) == DailyReport.columns.count)
            #expect(table.contains("<td class=\"num\">4200</td>"))
            // Every field has a label; the filter form is a GET (a report is a link).
            for field in ["from", "to", "merchant", "site", "descriptor", "channel", "environment"] {
                #expect(html.contains("<label for=\"report-\(field)\">"), "\(field)")
                #expect(html.contains("id=\"report-\(field)\" name=\"\(field)\""), "\(field)")
            }
            #expect(html.contains("<form method=\"get\" action=\"/reports\""))
            // Filters are kept in the form.
            let mit = try await browser.get("/reports?from=2026-11-19&to=2026-11-21&channel=mit")
            #expect(mit.body.contains("<option value=\"mit\" selected>mit</option>"))
            #expect(mit.body.contains("<dd data-total=\"approved\">1</dd>"))
            // Without dates: the last 14 days, today included.
            let recent = try await browser.get("/reports")
            #expect(recent.status == 200)
            #expect(count("<rect class=\"chart-bar\"", recent.body.components(separatedBy: "id=\"chart-approved\"")[1].components(separatedBy: "</figure>")[0]) == 14)
            #expect(recent.body.contains("value=\"\(DailyReport.dayText(Date()))\""))
        }
    }

    @Test func badFiltersAreRefusedWithTheReason() async throws {
        try await RunningConsole.with { console in
            try await console.withDatabase { try await SeededDataset.seed($0) }
            try await console.addAccount("vera", role: .viewer)
            let browser = console.browser()
            try await browser.signIn("vera")
            for (query, reason) in [
                ("from=2026-11-21&to=2026-11-20", "From must not be after To."),
                ("from=2026-13-01&to=2026-11-20", "From and To must be dates like 2026-11-26."),
                ("from=2026-11-20&to=2026-11-20&merchant=nobody", "unknown merchant nobody"),
                ("from=2026-11-20&to=2026-11-20&channel=sms", "Channel must be mit, cit_website or cit_call_center, not sms."),
                ("from=2026-11-20&to=2026-11-20&environment=%3Cb%3E", "Environment must be sandbox or production, not &lt;b&gt;."),
            ] {
                let page = try await browser.get("/reports?\(query)")
                #expect(page.status == 400, "\(query)")
                #expect(page.body.contains("role=\"alert\""), "\(query)")
                #expect(page.body.contains(reason), "\(query)")
                // The form is still there to put it right.
                #expect(page.body.contains("id=\"reports-filter\""))
                #expect(try await browser.get("/reports/report.csv?\(query)").status == 400, "\(query)")
            }
        }
    }
}
