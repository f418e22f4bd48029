import Foundation

/// Draws a ``Chart`` as a `<figure>`: a caption, an inline SVG (role img, named by its `<title>`
/// and described by its `<desc>`), a legend, and the numbers as a table in a `<details>` that a
/// keyboard or screen-reader user opens instead of reading the picture.
///
/// The SVG has a viewBox and no fixed size, so it scales to the column (1280 px or a phone); it
/// uses presentation attributes only (no `style`), which a strict Content-Security-Policy allows.
public enum ChartRenderer {
    static let width = 440.0, height = 250.0
    static let left = 52.0, right = 14.0, top = 12.0, bottom = 50.0
    /// At most this many category labels are written under the axis; the others are in the table.
    static let maxAxisLabels = 6

    /// The figure, ready to place in a page (drawn here from numbers; every text escaped).
    public static func html(_ chart: Chart) -> HTML {
        let id = chart.id
        return HTML(unescaped: """
            <figure class="chart" id="\(e(id))">
            <figcaption id="\(e(id))-caption">\(e(chart.title))</figcaption>
            \(svg(chart))
            \(legend(chart))
            \(table(chart))
            </figure>
            """)
    }

    /// The `<svg>` element alone.
    static func svg(_ chart: Chart) -> String {
        let id = chart.id
        let unit = chart.format.axisUnit(largest: chart.extent.map(\.magnitude).max() ?? 0)
        let scale = ChartScale(covering: chart.extent.map { $0 / unit.divisor }, integral: chart.format.integral && unit.divisor == 1)
        let plotBottom = height - bottom, plotRight = width - right
        let y = { (value: Double) in scale.position(value / unit.divisor, bottom: plotBottom, top: top) }
        var out: [String] = []
        out.append(#"<svg class="chart-svg" viewBox="0 0 \#(n(width)) \#(n(height))" width="100%" role="img" focusable="false" aria-labelledby="\#(e(id))-title \#(e(id))-desc" font-family="system-ui, sans-serif" font-size="12">"#)
        out.append(#"<title id="\#(e(id))-title">\#(e(chart.title))</title>"#)
        out.append(#"<desc id="\#(e(id))-desc">\#(e(description(chart)))</desc>"#)
        // Grid lines and value ticks.
        out.append(#"<g class="chart-grid" stroke="currentColor" stroke-opacity="0.18">"#)
        for tick in scale.ticks {
            let ty = scale.position(tick, bottom: plotBottom, top: top)
            out.append(#"<line x1="\#(n(left))" x2="\#(n(plotRight))" y1="\#(n(ty))" y2="\#(n(ty))"/>"#)
        }
        out.append("</g>")
        out.append(#"<g class="chart-ticks" fill="currentColor" text-anchor="end">"#)
        for tick in scale.ticks {
            let ty = scale.position(tick, bottom: plotBottom, top: top)
            out.append(#"<text x="\#(n(left - 6))" y="\#(n(ty + 4))">\#(e(unit.label(tick)))</text>"#)
        }
        out.append("</g>")
        // Axis titles.
        out.append(#"<text class="chart-axis-title" fill="currentColor" text-anchor="middle" transform="translate(14 \#(n((top + plotBottom) / 2))) rotate(-90)">\#(e(chart.valueAxis))</text>"#)
        out.append(#"<text class="chart-axis-title" fill="currentColor" text-anchor="middle" x="\#(n((left + plotRight) / 2))" y="\#(n(height - 6))">\#(e(chart.labelAxis))</text>"#)

        let slot = chart.labels.isEmpty ? 0 : (plotRight - left) / Double(chart.labels.count)
        switch chart.style {
        case .groupedBars, .stackedBars: out.append(bars(chart, slot: slot, y: y, plotBottom: plotBottom))
        case .lines: out.append(lines(chart, y: y, plotRight: plotRight))
        }
        // The zero line, over the bars.
        out.append(#"<line class="chart-baseline" stroke="currentColor" x1="\#(n(left))" x2="\#(n(plotRight))" y1="\#(n(y(0)))" y2="\#(n(y(0)))"/>"#)
        // Category labels under the axis, thinned to at most maxAxisLabels.
        out.append(#"<g class="chart-labels" fill="currentColor" text-anchor="middle">"#)
        for i in labelIndices(chart.labels.count) {
            let lines = chart.style == .lines && chart.labels.count > 1
            let x = lines ? pointX(i, count: chart.labels.count, plotRight: plotRight) : left + slot * (Double(i) + 0.5)
            // A line's first and last points sit on the plot's edges: their labels grow inwards.
            let anchor = !lines ? "" : i == 0 ? #" text-anchor="start""# : i == chart.labels.count - 1 ? #" text-anchor="end""# : ""
            out.append(#"<text x="\#(n(x))" y="\#(n(plotBottom + 18))"\#(anchor)>\#(e(short(chart.labels[i])))</text>"#)
        }
        out.append("</g>")
        if chart.labels.isEmpty || chart.largest == nil {
            out.append(#"<text class="chart-empty" fill="currentColor" text-anchor="middle" x="\#(n((left + plotRight) / 2))" y="\#(n((top + plotBottom) / 2))">\#(chart.labels.isEmpty ? "No data" : "All zero")</text>"#)
        }
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    private static func bars(_ chart: Chart, slot: Double, y: (Double) -> Double, plotBottom: Double) -> String {
        var out = [#"<g class="chart-bars">"#]
        let stacked = chart.style == .stackedBars
        let groupWidth = slot * 0.8
        let barWidth = stacked || chart.series.isEmpty ? groupWidth : groupWidth / Double(chart.series.count)
        for (i, label) in chart.labels.enumerated() {
            let groupX = left + slot * Double(i) + (slot - groupWidth) / 2
            var up = 0.0, down = 0.0
            for (s, series) in chart.series.enumerated() {
                let value = series.values[i]
                let from: Double, to: Double
                if stacked {
                    if value >= 0 { from = up; up += value; to = up } else { from = down; down += value; to = down }
                } else {
                    from = 0; to = value
                }
                let x = stacked ? groupX : groupX + barWidth * Double(s)
                let y1 = y(max(from, to)), y2 = y(min(from, to))
                out.append(#"<rect class="chart-bar" x="\#(n(x))" y="\#(n(y1))" width="\#(n(max(1, barWidth - 1)))" height="\#(n(y2 - y1))" fill="\#(ChartPalette.colour(s))"><title>\#(e(label)), \#(e(series.name)): \#(e(chart.format.exact(value)))</title></rect>"#)
            }
        }
        out.append("</g>")
        return out.joined(separator: "\n")
    }

    private static func lines(_ chart: Chart, y: (Double) -> Double, plotRight: Double) -> String {
        var out = [#"<g class="chart-lines" fill="none" stroke-width="2">"#]
        let count = chart.labels.count
        for (s, series) in chart.series.enumerated() {
            let points = series.values.enumerated().map { "\(n(pointX($0.offset, count: count, plotRight: plotRight))),\(n(y($0.element)))" }
            let dash = ChartPalette.dash(s)
            out.append(#"<polyline class="chart-line" stroke="\#(ChartPalette.colour(s))"\#(dash.isEmpty ? "" : #" stroke-dasharray="\#(dash)""#) points="\#(points.joined(separator: " "))"/>"#)
        }
        out.append("</g>")
        out.append(#"<g class="chart-points">"#)
        for (s, series) in chart.series.enumerated() {
            for (i, value) in series.values.enumerated() {
                out.append(#"<circle class="chart-point" cx="\#(n(pointX(i, count: count, plotRight: plotRight)))" cy="\#(n(y(value)))" r="2.5" fill="\#(ChartPalette.colour(s))"><title>\#(e(chart.labels[i])), \#(e(series.name)): \#(e(chart.format.exact(value)))</title></circle>"#)
            }
        }
        out.append("</g>")
        return out.joined(separator: "\n")
    }

    /// A line's points run from the left edge to the right edge (one point: the middle).
    private static func pointX(_ index: Int, count: Int, plotRight: Double) -> Double {
        count <= 1 ? (left + plotRight) / 2 : left + (plotRight - left) * Double(index) / Double(count - 1)
    }

    /// Which labels are written under the axis: all when few, else evenly spaced, the last included.
    static func labelIndices(_ count: Int) -> [Int] {
        guard count > maxAxisLabels else { return Array(0..<count) }
        let every = Int((Double(count - 1) / Double(maxAxisLabels - 1)).rounded(.up))
        var indices = Array(stride(from: 0, to: count, by: every))
        if indices.last != count - 1 {
            // The last label replaces a regular one too close to it to be read apart.
            if let last = indices.last, Double(count - 1 - last) < Double(every) * 0.75 { indices.removeLast() }
            indices.append(count - 1)
        }
        return indices
    }

    /// What the chart shows, for `<desc>`: the summary, the series and the largest value.
    static func description(_ chart: Chart) -> String {
        var text = chart.summary
        let kind = chart.style == .lines ? "Line chart" : "Bar chart"
        text += " \(kind) of \(chart.valueAxis) by \(chart.labelAxis), \(chart.labels.count) \(chart.labelAxis) value(s)"
        if chart.series.count > 1 { text += "; series: " + chart.series.map(\.name).joined(separator: ", ") }
        if let largest = chart.largest {
            text += ". Largest: \(chart.format.exact(largest.value))"
                + (chart.series.count > 1 ? " (\(largest.series))" : "") + " at \(largest.label)."
        } else {
            text += ". Every value is zero."
        }
        return text + " The numbers are in the table below the chart."
    }

    /// The legend (series names and colours); none for a single series.
    static func legend(_ chart: Chart) -> String {
        guard chart.series.count > 1 else { return "" }
        let items = chart.series.enumerated().map { s, series in
            #"<li><svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" focusable="false"><rect width="14" height="14" fill="\#(ChartPalette.colour(s))"/></svg> \#(e(series.name))</li>"#
        }
        return #"<ul class="chart-legend" aria-label="Legend">"# + items.joined() + "</ul>"
    }

    /// The numbers of the chart as a table: a row per label, a column per series (and a total for
    /// stacked bars).
    static func table(_ chart: Chart) -> String {
        let total = chart.style == .stackedBars && chart.series.count > 1
        var out = [#"<details class="chart-data"><summary>Table: \#(e(chart.title))</summary>"#]
        out.append(#"<div class="table-wrap" role="region" tabindex="0" aria-label="\#(e(chart.title)): table"><table><caption>\#(e(chart.title))</caption><thead><tr>"#)
        out.append(#"<th scope="col">\#(e(chart.labelAxis))</th>"#)
        for series in chart.series { out.append(#"<th scope="col" class="num">\#(e(series.name))</th>"#) }
        if total { out.append(#"<th scope="col" class="num">total</th>"#) }
        out.append("</tr></thead><tbody>")
        for (i, label) in chart.labels.enumerated() {
            out.append(#"<tr><th scope="row">\#(e(label))</th>"#)
            for series in chart.series { out.append(#"<td class="num">\#(e(chart.format.exact(series.values[i])))</td>"#) }
            if total { out.append(#"<td class="num">\#(e(chart.format.exact(chart.series.map { $0.values[i] }.reduce(0, +))))</td>"#) }
            out.append("</tr>")
        }
        if chart.labels.isEmpty {
            out.append(#"<tr><td colspan="\#(chart.series.count + 1 + (total ? 1 : 0))">No data</td></tr>"#)
        }
        out.append("</tbody></table></div></details>")
        return out.joined()
    }

    /// A label short enough for the axis (the full text is in the tooltip and the table).
    static func short(_ label: String) -> String {
        label.count <= 12 ? label : String(label.prefix(11)) + "…"
    }

    /// A coordinate with at most one decimal.
    static func n(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func e(_ text: String) -> String { HTML.escape(text) }
}
