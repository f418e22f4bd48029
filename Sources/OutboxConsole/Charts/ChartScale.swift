import Foundation

/// A linear value axis with "nice" round ticks (steps of 1, 2 or 5 times a power of ten), always
/// including zero, so bars start at a baseline a reader can trust.
struct ChartScale: Equatable {
    /// Lowest and highest tick: the axis spans exactly these.
    let lower: Double
    let upper: Double
    let step: Double

    /// An axis covering `values` (and zero) with about `targetTicks` intervals. Integer data
    /// (`integral`) never gets a step below 1, so a count axis never reads 0.5 events.
    init(covering values: [Double], targetTicks: Int = 4, integral: Bool) {
        let finite = values.filter(\.isFinite)
        let low = min(0, finite.min() ?? 0), high = max(0, finite.max() ?? 0)
        let span = high - low
        guard span > 0 else {
            // Nothing to show (all zero): an axis 0...1 with one interval.
            self.init(lower: 0, upper: 1, step: 1)
            return
        }
        var step = Self.niceStep(span / Double(max(1, targetTicks)))
        if integral { step = max(1, step.rounded(.up)) }
        self.init(lower: (low / step).rounded(.down) * step, upper: (high / step).rounded(.up) * step, step: step)
    }

    private init(lower: Double, upper: Double, step: Double) {
        self.lower = lower
        self.upper = upper
        self.step = step
    }

    /// The smallest 1, 2 or 5 x 10^k at least `rough`.
    static func niceStep(_ rough: Double) -> Double {
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= rough * (1 - 1e-9) {
            return factor * magnitude
        }
        return 10 * magnitude
    }

    /// The tick values, lower to upper inclusive.
    var ticks: [Double] {
        let count = Int(((upper - lower) / step).rounded())
        return (0...count).map { lower + Double($0) * step }
    }

    /// Where `value` falls between `bottom` (the lower end, in SVG y) and `top`.
    func position(_ value: Double, bottom: Double, top: Double) -> Double {
        bottom - (value - lower) / (upper - lower) * (bottom - top)
    }
}

/// How a chart writes its numbers: exactly in the data table and tooltips, compactly on the axis.
public enum ChartValueFormat: Sendable {
    /// Whole numbers: events, calls, cents (`12,345`; axis `12.3k`).
    case count
    /// Durations in seconds (`45 s`, `12.5 min`, `3.2 h`).
    case seconds

    /// The exact value, as the data table shows it.
    public func exact(_ value: Double) -> String {
        switch self {
        case .count: return Self.grouped(value)
        case .seconds: return Self.duration(value)
        }
    }

    /// The unit of an axis whose largest value is `largest`: the divisor the values are scaled by
    /// before ticks are chosen (so a duration axis reads 0, 5, 10 min rather than 0 s, 300 s), and
    /// how a tick (in that unit) is written.
    func axisUnit(largest: Double) -> (divisor: Double, label: @Sendable (Double) -> String) {
        switch self {
        case .count:
            return (1, { value in
                for (limit, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] where abs(value) >= limit {
                    return Self.trimmed(value / limit) + suffix
                }
                return Self.trimmed(value)
            })
        case .seconds:
            let (divisor, suffix): (Double, String) = switch largest.magnitude {
            case ..<120: (1, " s")
            case ..<7200: (60, " min")
            case ..<172_800: (3600, " h")
            default: (86400, " d")
            }
            return (divisor, { Self.trimmed($0) + suffix })
        }
    }

    /// Whether the values are whole numbers (a count axis never reads 0.5 events).
    var integral: Bool { if case .count = self { true } else { false } }

    /// `1234567` as `1,234,567`; fractions keep one decimal.
    static func grouped(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        let whole = Int64(rounded.magnitude.rounded(.down))
        var digits = String(whole)
        var groups: [Substring] = []
        while digits.count > 3 {
            groups.insert(digits.suffix(3)[...], at: 0)
            digits.removeLast(3)
        }
        groups.insert(digits[...], at: 0)
        let fraction = rounded.magnitude - Double(whole)
        let tail = fraction > 0 ? "." + String(Int((fraction * 10).rounded())) : ""
        return (rounded < 0 ? "-" : "") + groups.joined(separator: ",") + tail
    }

    /// At most one decimal, none when whole.
    static func trimmed(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(format: "%.1f", rounded)
    }

    static func duration(_ seconds: Double) -> String {
        switch seconds.magnitude {
        case ..<120: return trimmed(seconds) + " s"
        case ..<7200: return trimmed(seconds / 60) + " min"
        case ..<172_800: return trimmed(seconds / 3600) + " h"
        default: return trimmed(seconds / 86400) + " d"
        }
    }
}
