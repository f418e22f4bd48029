/// Exact conversion of integer cents into the decimal-dollar JSON number FlexCharge expects on `/refund`.
public enum DollarAmount {
    /// The JSON number text for `cents`, e.g. `1234` → `12.34`, `5` → `0.05`, `-250` → `-2.50`. No floating point.
    public static func jsonNumber(cents: Int) -> String {
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        let sign = cents < 0 ? "-" : ""
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
