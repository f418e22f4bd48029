import Foundation

/// The parts of a FlexCharge error body the client understands: field errors in either validation shape and a
/// human message (`title`, `responseMessage`, `statusName`, `status`, or the first `errors[].item1`).
struct ErrorBody {
    var fieldErrors: [String: [String]] = [:]
    var message: String?

    /// Parses a body; anything that is not a JSON object yields an empty result.
    init(_ bytes: [UInt8]) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return }
        if let nested = object["errors"] as? [String: Any] {
            fieldErrors = Self.messages(in: nested)
        } else {
            fieldErrors = Self.messages(in: object).filter { $0.key.lowercased() != "traceid" }
        }
        let tuples = (object["errors"] as? [[String: Any]])?.compactMap { $0["item1"] as? String }
        message = SafeText.stored(["title", "responseMessage", "statusName", "status"].lazy.compactMap { object[$0] as? String }.first
            ?? tuples?.first)
    }

    /// Most fields and messages per field kept from one error body, and their lengths.
    static let maximumFields = 20, maximumMessagesPerField = 5, maximumFieldNameLength = 100, maximumMessageLength = 300

    /// The entries of `object` whose value is an array of strings (the ModelState shape), bounded.
    private static func messages(in object: [String: Any]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for key in object.keys.sorted() where result.count < maximumFields {
            guard let values = object[key] as? [String] else { continue }
            result[SafeText.stored(key, limit: maximumFieldNameLength)] =
                values.prefix(maximumMessagesPerField).map { SafeText.stored($0, limit: maximumMessageLength) }
        }
        return result
    }
}
