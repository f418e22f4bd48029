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
        message = ["title", "responseMessage", "statusName", "status"].lazy.compactMap { object[$0] as? String }.first
            ?? tuples?.first
    }

    /// The entries of `object` whose value is an array of strings (the ModelState shape).
    private static func messages(in object: [String: Any]) -> [String: [String]] {
        object.compactMapValues { $0 as? [String] }
    }
}
