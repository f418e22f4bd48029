/// An amount of money in the currency's smallest unit, read from and written to `numeric`
/// columns exactly (no floating point): `numeric '12.34'` ↔ `Cents(1234)`.
struct Cents: Sendable, Hashable, Comparable, CustomStringConvertible, PGCodable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    static func < (lhs: Cents, rhs: Cents) -> Bool { lhs.value < rhs.value }

    /// Decimal text with two fraction digits, e.g. `-0.05`, `12.34`.
    var decimalText: String {
        let magnitude = value.magnitude
        let fraction = magnitude % 100
        return "\(value < 0 ? "-" : "")\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    var description: String { decimalText }

    public var pgText: String? { decimalText }

    /// Parses `numeric` text; refuses values with a non-zero third fraction digit (not whole cents).
    public static func decode(pgText: String?) -> Cents? {
        guard let text = pgText, !text.isEmpty else { return nil }
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative || digits.first == "+" { digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int64(parts[0].isEmpty ? "0" : parts[0]) else { return nil }
        var fraction = parts.count > 1 ? parts[1] : ""
        while fraction.count > 2 && fraction.last == "0" { fraction = fraction.dropLast() }
        guard fraction.count <= 2, fraction.allSatisfy(\.isNumber) else { return nil }
        let cents = Int64(fraction.padding(toLength: 2, withPad: "0", startingAt: 0)) ?? 0
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 100)
        guard !overflow else { return nil }
        return Cents(negative ? -(scaled + cents) : scaled + cents)
    }
}

extension Substring {
    fileprivate func padding(toLength length: Int, withPad pad: Character, startingAt: Int) -> String {
        String(self) + String(repeating: pad, count: Swift.max(0, length - count))
    }
}
