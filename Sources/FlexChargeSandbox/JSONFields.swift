import Foundation

/// A parsed JSON object with case-insensitive member lookup (FlexCharge binds `AppKey`/`appKey` alike).
struct JSONFields {
    private let members: [String: Any]

    /// An empty object.
    init() { members = [:] }

    /// Parses a JSON object body; `nil` when the body is not a JSON object.
    init?(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return nil }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return nil }
        self.init(object)
    }

    private init(_ object: [String: Any]) {
        members = Self.lowercasingKeys(object)
    }

    /// The object with every key lower-cased, nested objects (also inside arrays) included, so that a lookup
    /// is one hash probe per path component.
    private static func lowercasingKeys(_ object: [String: Any]) -> [String: Any] {
        var lowered = [String: Any](minimumCapacity: object.count)
        for (key, value) in object {
            switch value {
            case let nested as [String: Any]: lowered[key.lowercased()] = lowercasingKeys(nested)
            case let array as [Any]:
                lowered[key.lowercased()] = array.map { ($0 as? [String: Any]).map(lowercasingKeys) ?? $0 }
            default: lowered[key.lowercased()] = value
            }
        }
        return lowered
    }

    /// The raw value at a dotted path such as `transaction.amount` (`nil` for missing or JSON null).
    subscript(path: String) -> Any? {
        if members.isEmpty { return nil }
        var current: Any? = members
        for part in path.lowercased().split(separator: ".") {
            guard let object = current as? [String: Any] else { return nil }
            current = object[String(part)]
        }
        return current is NSNull ? nil : current
    }

    /// A non-empty string (numbers are rendered as text).
    func string(_ path: String) -> String? {
        switch self[path] {
        case let text as String: return text.isEmpty ? nil : text
        case let number as NSNumber: return number.stringValue
        default: return nil
        }
    }

    /// An integer (a JSON number or a numeric string).
    func int(_ path: String) -> Int? {
        switch self[path] {
        case let number as NSNumber: return number.intValue
        case let text as String: return Int(text)
        default: return nil
        }
    }

    /// A decimal amount in dollars converted to cents (`12.34` → `1234`).
    func cents(_ path: String) -> Int? {
        switch self[path] {
        case let number as NSNumber: return Int((number.doubleValue * 100).rounded())
        case let text as String: return Double(text).map { Int(($0 * 100).rounded()) }
        default: return nil
        }
    }

    /// A boolean .
    func bool(_ path: String) -> Bool? { self[path] as? Bool }

    /// Whether a member exists (even when null is excluded: present and not null).
    func has(_ path: String) -> Bool { self[path] != nil }
}
