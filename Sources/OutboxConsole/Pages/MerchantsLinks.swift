import Foundation
import OutboxEngine

/// Links and small pieces shared by the Merchants and Events pages.
enum MerchantsLinks {
    /// The page of one merchant.
    static func merchant(_ merchantID: String) -> String { "/merchants/" + pathSegment(merchantID) }

    /// Events of one merchant (and order).
    static func events(merchant: String, order: String? = nil) -> String {
        "/events" + query([("merchant", merchant), ("order", order)])
    }

    /// `?a=1&b=2` of the pairs whose value is set and not empty (percent-encoded), or "".
    static func query(_ pairs: [(String, String?)]) -> String {
        let parts = pairs.compactMap { name, value -> String? in
            guard let value, !value.isEmpty else { return nil }
            return "\(name)=\(component(value))"
        }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    /// One path segment or query value, percent-encoded (only unreserved characters kept).
    static func component(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static func pathSegment(_ text: String) -> String { component(text) }

    /// A path parameter as the router gave it (percent-decoded if it still is encoded).
    static func decoded(_ text: String) -> String { text.removingPercentEncoding ?? text }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// A switch value as a badge (the word is always written: never colour alone).
    static func badge(_ value: ChannelSwitch) -> HTML {
        let tone = switch value {
        case .off: "badge"
        case .sandbox: "badge warn"
        case .production: "badge ok"
        }
        return "<span class=\"\(tone)\">\(value.rawValue)</span>"
    }

    /// A channel's name for people.
    static func title(_ channel: Channel) -> String {
        switch channel {
        case .citWebsite: "CIT website"
        case .citCallCenter: "CIT call center"
        case .mit: "MIT"
        }
    }

    /// A time as ISO-8601 UTC, to the second.
    static func time(_ date: Date?) -> String {
        guard let date else { return "" }
        return ISO8601DateFormatter().string(from: date)
    }
}
