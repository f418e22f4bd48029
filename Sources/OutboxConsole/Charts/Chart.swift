/// One named row of numbers of a chart: a bar colour or a line, one value per label.
public struct ChartSeries: Sendable, Equatable {
    public let name: String
    public let values: [Double]

    public init(name: String, values: [Double]) {
        self.name = name
        self.values = values
    }
}

/// A chart the server draws as SVG (no script, no external file): bars or lines over labelled
/// categories (lanes, minutes, days), with its title and a summary for assistive technology
/// (`<title>`, `<desc>`) and the same numbers as a table beside it.
///
/// Rendered by ``ChartRenderer``; the page wraps the result in its own section.
public struct Chart: Sendable {
    public enum Style: Sendable, Equatable {
        /// One bar per label and series, side by side.
        case groupedBars
        /// One bar per label, the series stacked on each other.
        case stackedBars
        /// One line per series, a point per label.
        case lines
    }

    /// Unique on the page: the element ids are made from it.
    public let id: String
    public let title: String
    /// What the chart shows, in a sentence; the renderer adds the largest value.
    public let summary: String
    public let style: Style
    /// The category axis: what a label is (`lane`, `minute`, `day`).
    public let labelAxis: String
    /// The value axis: what is counted (`events`, `calls`, `cents`).
    public let valueAxis: String
    public let format: ChartValueFormat
    public let labels: [String]
    public let series: [ChartSeries]

    /// Every series must have one value per label.
    public init(id: String, title: String, summary: String, style: Style, labelAxis: String, valueAxis: String,
                format: ChartValueFormat = .count, labels: [String], series: [ChartSeries]) {
        precondition(series.allSatisfy { $0.values.count == labels.count }, "a chart series needs one value per label")
        self.id = id
        self.title = title
        self.summary = summary
        self.style = style
        self.labelAxis = labelAxis
        self.valueAxis = valueAxis
        self.format = format
        self.labels = labels
        self.series = series
    }

    /// The values the value axis must cover: each value, or each stack's total.
    var extent: [Double] {
        guard style == .stackedBars else { return series.flatMap(\.values) }
        return labels.indices.flatMap { i in
            [series.map { max(0, $0.values[i]) }.reduce(0, +), series.map { min(0, $0.values[i]) }.reduce(0, +)]
        }
    }

    /// The largest value and where it is, for the summary (`nil` when every value is zero).
    var largest: (series: String, label: String, value: Double)? {
        var best: (String, String, Double)?
        for s in series {
            for (label, value) in zip(labels, s.values) where value != 0 && value > (best?.2 ?? -.infinity) {
                best = (s.name, label, value)
            }
        }
        return best
    }
}

/// The colours of the series: the Okabe-Ito palette (told apart with the common colour-vision
/// deficiencies), dark enough against white for the 3:1 that graphics need. Lines also differ by
/// dash pattern, so colour is never the only difference.
enum ChartPalette {
    static let colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#7A6A00", "#56B4E9", "#000000"]
    static let dashes = ["", "6 3", "2 3", "8 3 2 3"]

    static func colour(_ index: Int) -> String { colours[index % colours.count] }
    static func dash(_ index: Int) -> String { dashes[index % dashes.count] }
}
