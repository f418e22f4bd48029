import Foundation
import Testing
@testable import OutboxEngine

/// The report CSV (DailyReport.csv: `report --format csv` and the console's download) is opened in
/// spreadsheets: the gateway's own text must not become a formula there.
@Suite struct ReportCSVTests {
    /// A row of the report with `merchant`, `site` and `descriptor` and a negative net.
    private func row(merchant: String, site: String, descriptor: String) -> [String] {
        DailyReport.columns.map { column in
            switch column {
            case "day": "2026-12-01"
            case "merchant_id": merchant
            case "site": site
            case "descriptor": descriptor
            case "net_cents": "-500"
            default: "0"
            }
        }
    }

    private func cells(_ csv: String) -> [String: String] {
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        // Only the first cells can hold a comma or quote here; the rest split plainly.
        return Dictionary(uniqueKeysWithValues: zip(DailyReport.columns, lines[1].split(separator: ",").map(String.init)))
    }

    @Test(arguments: ["=HYPERLINK(\"http://evil.example\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"])
    func gatewayTextThatASpreadsheetWouldRunIsDefused(_ text: String) {
        let csv = DailyReport.csv([row(merchant: text, site: text, descriptor: text)])
        // Every gateway text cell starts with the apostrophe (inside quotes where RFC 4180 needs them).
        for line in csv.split(separator: "\n").dropFirst() {
            #expect(!line.hasPrefix("2026-12-01,=") && !line.hasPrefix("2026-12-01,+") && !line.hasPrefix("2026-12-01,-") && !line.hasPrefix("2026-12-01,@"))
        }
        let quotedOrNot = text.contains(where: { $0 == "\"" || $0 == "\r" || $0 == "," }) ? "\"'" : "'"
        #expect(csv.components(separatedBy: "," + quotedOrNot).count - 1 >= 3, "\(csv)")
    }

    @Test func ordinaryTextAndNegativeNumbersAreUnchanged() {
        let values = cells(DailyReport.csv([row(merchant: "books-direct", site: "https://books.example", descriptor: "BOOKS*ONLINE")]))
        #expect(values["merchant_id"] == "books-direct")
        #expect(values["site"] == "https://books.example")
        #expect(values["descriptor"] == "BOOKS*ONLINE")
        #expect(values["net_cents"] == "-500")
        let defused = cells(DailyReport.csv([row(merchant: "-m", site: "@s", descriptor: "+d")]))
        #expect(defused["merchant_id"] == "'-m" && defused["site"] == "'@s" && defused["descriptor"] == "'+d")
        #expect(defused["net_cents"] == "-500")
    }
}
