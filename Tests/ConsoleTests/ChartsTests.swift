import Foundation
import Testing

@testable import OutboxConsole

/// The server-drawn SVG charts: one mark per value, the right geometry, accessible names, a table
/// with the same numbers, escaping, and axes that start at zero with round ticks.
@Suite struct ChartsTests {
    static func occurrences(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// The markup of the chart `id` on a page.
    static func figure(_ id: String, in html: String) -> String {
        html.components(separatedBy: "<figure class=\"chart\" id=\"\(id)\">")[1].components(separatedBy: "</figure>")[0]
    }

    /// The attribute `name` of every element that starts with `prefix`, as numbers.
    static func attribute(_ name: String, of prefix: String, in html: String) -> [Double] {
        html.components(separatedBy: prefix).dropFirst().compactMap { element in
            guard let start = element.range(of: " \(name)=\"") else { return nil }
            let rest = element[start.upperBound...]
            return Double(rest[..<rest.firstIndex(of: "\"")!])
        }
    }

    static let lanes = Chart(
        id: "backlog", title: "Backlog per lane", summary: "Events waiting per lane and state.", style: .groupedBars,
        labelAxis: "lane", valueAxis: "events", labels: ["cit_evaluate", "mit_evaluate", "follow_up", "transmit"],
        series: [ChartSeries(name: "pending", values: [3, 0, 12, 7]), ChartSeries(name: "running", values: [1, 2, 0, 0])])

    @Test func groupedBarsDrawOneBarPerLabelAndSeriesWithHeightsProportionalToTheValues() {
        let html = ChartRenderer.html(Self.lanes).markup
        #expect(Self.occurrences(#"<rect class="chart-bar""#, in: html) == 8)
        let heights = Self.attribute("height", of: #"<rect class="chart-bar""#, in: html)
        // Order: label by label, series by series: cit pending 3, cit running 1, mit 0, 2, ...
        let values = [3.0, 1, 0, 2, 12, 0, 7, 0]
        #expect(heights.count == 8)
        // The axis runs 0...15 (steps of 5 cover 12); 1 event is (plot height / 15) tall.
        let perEvent = heights[4] / 12
        for (height, value) in zip(heights, values) { #expect(abs(height - value * perEvent) < 0.11, "\(height) for \(value)") }
        #expect(perEvent > 0)
        // Every bar says what it is.
        #expect(html.contains("<title>follow_up, pending: 12</title>"))
        #expect(html.contains("<title>mit_evaluate, running: 2</title>"))
    }

    @Test func theSVGIsNamedAndDescribedAndTheNumbersAreInATable() {
        let html = ChartRenderer.html(Self.lanes).markup
        #expect(html.contains(#"role="img""#))
        #expect(html.contains(#"aria-labelledby="backlog-title backlog-desc""#))
        #expect(html.contains(#"<title id="backlog-title">Backlog per lane</title>"#))
        let desc = html.components(separatedBy: #"<desc id="backlog-desc">"#)[1].components(separatedBy: "</desc>")[0]
        #expect(desc.contains("Events waiting per lane and state."))
        #expect(desc.contains("Largest: 12 (pending) at follow_up"))
        #expect(desc.contains("series: pending, running"))
        // The table: a header per series, one row per label with its header cell.
        #expect(html.contains(#"<th scope="col">lane</th><th scope="col" class="num">pending</th><th scope="col" class="num">running</th>"#))
        #expect(Self.occurrences(#"<th scope="row">"#, in: html) == 4)
        #expect(html.contains(#"<tr><th scope="row">transmit</th><td class="num">7</td><td class="num">0</td></tr>"#))
        // A legend for two series; no style attribute or element (a strict CSP refuses them).
        #expect(Self.occurrences("<li>", in: html) == 2)
        #expect(!html.contains("style="))
        #expect(!html.contains("<style"))
        #expect(!html.contains("<script"))
    }

    @Test func stackedBarsStackAndTheTableAddsATotal() {
        var chart = Self.lanes
        chart = Chart(id: "s", title: "t", summary: "", style: .stackedBars, labelAxis: "lane", valueAxis: "events",
                      labels: chart.labels, series: chart.series)
        let html = ChartRenderer.html(chart).markup
        #expect(Self.occurrences(#"<rect class="chart-bar""#, in: html) == 8)
        let ys = Self.attribute("y", of: #"<rect class="chart-bar""#, in: html)
        let heights = Self.attribute("height", of: #"<rect class="chart-bar""#, in: html)
        // cit_evaluate: running (1) sits on top of pending (3): its bottom is pending's top.
        #expect(abs((ys[1] + heights[1]) - ys[0]) < 0.11)
        // All stacks share one x per label.
        #expect(Self.attribute("x", of: #"<rect class="chart-bar""#, in: html)[0] == Self.attribute("x", of: #"<rect class="chart-bar""#, in: html)[1])
        #expect(html.contains(#"<th scope="col" class="num">total</th>"#))
        #expect(html.contains(#"<tr><th scope="row">follow_up</th><td class="num">12</td><td class="num">0</td><td class="num">12</td></tr>"#))
    }

    @Test(arguments: [1, 2, 7, 60])
    func aLineHasOnePointPerLabelLeftToRight(count: Int) {
        let labels = (0..<count).map { String(format: "20:%02d", $0) }
        let chart = Chart(id: "tp", title: "Throughput", summary: "Calls per minute.", style: .lines, labelAxis: "minute",
                          valueAxis: "calls", labels: labels,
                          series: [ChartSeries(name: "answered", values: (0..<count).map { Double($0 * 3) }),
                                   ChartSeries(name: "failed", values: (0..<count).map { Double($0 % 2) })])
        let html = ChartRenderer.html(chart).markup
        #expect(Self.occurrences(#"<circle class="chart-point""#, in: html) == 2 * count)
        #expect(Self.occurrences(#"<polyline class="chart-line""#, in: html) == 2)
        let points = html.components(separatedBy: #"points=""#)[1].prefix { $0 != "\"" }.split(separator: " ")
        #expect(points.count == count)
        let xs = points.map { Double($0.split(separator: ",")[0])! }
        #expect(xs == xs.sorted())
        #expect(Set(xs).count == count)
        // The second series is dashed: colour is not the only difference.
        #expect(Self.occurrences("stroke-dasharray", in: html) == 1)
        // At most six labels under the axis, the first and the last among them.
        let axis = html.components(separatedBy: #"<g class="chart-labels""#)[1].components(separatedBy: "</g>")[0]
        let written = Self.occurrences("<text", in: axis)
        #expect(written == min(count, ChartRenderer.maxAxisLabels) || (count > 6 && written <= ChartRenderer.maxAxisLabels))
        #expect(axis.contains(">\(labels[0])<") && axis.contains(">\(labels[count - 1])<"))
        #expect(Self.occurrences(#"<th scope="row">"#, in: html) == count)
    }

    @Test func textFromTheDatabaseIsEscapedEverywhere() {
        let chart = Chart(id: "x", title: "Merchant <b>", summary: "a & b", style: .groupedBars, labelAxis: "merchant",
                          valueAxis: "cents", labels: [#"<script>alert("m")</script>"#], series: [ChartSeries(name: "o'n", values: [5])])
        let html = ChartRenderer.html(chart).markup
        #expect(!html.contains("<script>"))
        #expect(!html.contains("<b>"))
        #expect(html.contains("&lt;script&gt;alert(&quot;m&quot;)&lt;/script&gt;"))
        #expect(html.contains("o&#39;n"))
        #expect(html.contains("a &amp; b"))
    }

    @Test func anEmptyOrAllZeroChartSaysSo() {
        let empty = ChartRenderer.html(Chart(id: "e", title: "t", summary: "", style: .lines, labelAxis: "day", valueAxis: "cents",
                                             labels: [], series: [ChartSeries(name: "a", values: [])])).markup
        #expect(empty.contains(">No data<"))
        #expect(empty.contains(#"<td colspan="2">No data</td>"#))
        let zero = ChartRenderer.html(Chart(id: "z", title: "t", summary: "", style: .groupedBars, labelAxis: "day", valueAxis: "cents",
                                            labels: ["a", "b"], series: [ChartSeries(name: "a", values: [0, 0])])).markup
        #expect(zero.contains(">All zero<"))
        #expect(zero.contains("Every value is zero."))
        #expect(Self.occurrences(#"<rect class="chart-bar""#, in: zero) == 2)
    }

    @Test func axesStartAtZeroWithRoundSteps() {
        #expect(ChartScale(covering: [12, 3], integral: true) == ChartScale(covering: [0, 15], integral: true))
        #expect(ChartScale(covering: [12, 3], integral: true).ticks == [0, 5, 10, 15])
        #expect(ChartScale(covering: [1], integral: true).ticks == [0, 1])
        #expect(ChartScale(covering: [0, 0], integral: true).ticks == [0, 1])
        #expect(ChartScale(covering: [2_480_000], integral: true).ticks == [0, 1_000_000, 2_000_000, 3_000_000])
        #expect(ChartScale(covering: [0.3], integral: false).ticks.map { ($0 * 10).rounded() } == [0, 1, 2, 3])
        // A negative value (money going back) puts zero inside the axis.
        let signed = ChartScale(covering: [-40, 90], integral: true)
        #expect(signed.ticks.first! <= -40 && signed.ticks.last! >= 90 && signed.ticks.contains(0))
        #expect(ChartScale.niceStep(3.2) == 5)
        #expect(ChartScale.niceStep(0.7) == 1)
        #expect(ChartScale.niceStep(20) == 20)
    }

    @Test func numbersAreWrittenExactlyInTheTableAndShortOnTheAxis() {
        #expect(ChartValueFormat.count.exact(1_234_567) == "1,234,567")
        #expect(ChartValueFormat.count.exact(-4200) == "-4,200")
        #expect(ChartValueFormat.count.exact(999) == "999")
        #expect(ChartValueFormat.seconds.exact(45) == "45 s")
        #expect(ChartValueFormat.seconds.exact(750) == "12.5 min")
        let count = ChartValueFormat.count.axisUnit(largest: 2_000_000)
        #expect(count.divisor == 1 && count.label(1_500_000) == "1.5M" && count.label(2000) == "2k")
        let minutes = ChartValueFormat.seconds.axisUnit(largest: 900)
        #expect(minutes.divisor == 60 && minutes.label(15) == "15 min")
        // A duration chart's ticks are in that unit: 0, 5, 10, 15 min for 14 minutes.
        let html = ChartRenderer.html(Chart(id: "age", title: "Oldest", summary: "", style: .groupedBars, labelAxis: "lane",
                                            valueAxis: "age", format: .seconds, labels: ["a"], series: [ChartSeries(name: "age", values: [840])])).markup
        #expect(html.contains(">15 min</text>"))
        #expect(html.contains("<title>a, age: 14 min</title>"))
    }
}
