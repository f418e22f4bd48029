import Foundation

/// A merchant's rate limit toward FlexCharge: calls a second per environment, shared by every
/// worker (migrations/0020; enforced by ``RateLimiter``). Written `20/s` (or `20`).
public struct MerchantRateLimit: Sendable, Equatable, Codable, CustomStringConvertible {
    public static let range = 1...100_000  // mirrors the CHECK in migrations/0020
    public var perSecond: Int

    public init(perSecond: Int) { self.perSecond = perSecond }

    /// Parses `N/s` or `N`; `nil` for anything else or outside ``range``.
    public init?(parsing text: String) {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        if digits.hasSuffix("/s") { digits = digits.dropLast(2) }
        guard let value = Int(digits), Self.range.contains(value) else { return nil }
        perSecond = value
    }

    public var description: String { "\(perSecond)/s" }
}
