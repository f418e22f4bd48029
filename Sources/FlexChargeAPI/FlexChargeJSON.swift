import Foundation

/// The JSON coders used for FlexCharge bodies.
enum FlexChargeJSON {
    /// Decoder that tolerates PascalCase keys (FlexCharge binds case-insensitively and its docs mix cases):
    /// the first letter of every key is lower-cased before matching the camelCase model properties.
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in AnyKey(camelCase(path.last?.stringValue ?? "")) }
        return decoder
    }

    /// The decoder for `body`: the plain one when every object key in it already starts with a lower-case ASCII
    /// letter (FlexCharge's usual answer), where the custom key strategy would map each key to itself and only
    /// cost time (it remaps every key of every object); ``decoder()`` otherwise. Same result either way.
    static func decoder(for body: [UInt8]) -> JSONDecoder {
        keysAreCamelCase(body) ? plain : shared
    }

    private static let plain = JSONDecoder()
    private static let shared = decoder()

    /// True when no string in `json` that is followed by `:` (an object key) starts with anything but `a`–`z`.
    /// Conservative: an escape as a key's first character, or an unterminated string, answers false.
    static func keysAreCamelCase(_ json: [UInt8]) -> Bool {
        var index = 0
        let count = json.count
        while index < count {
            guard json[index] == UInt8(ascii: "\"") else { index += 1; continue }
            let first = index + 1 < count ? json[index + 1] : 0
            index += 1
            // The end of the string, skipping escaped characters.
            while index < count && json[index] != UInt8(ascii: "\"") {
                index += json[index] == UInt8(ascii: "\\") ? 2 : 1
            }
            guard index < count else { return false }
            index += 1
            var next = index
            while next < count && (json[next] == 0x20 || json[next] == 0x09 || json[next] == 0x0A || json[next] == 0x0D) { next += 1 }
            if next < count && json[next] == UInt8(ascii: ":") && !(first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) {
                return false
            }
        }
        return true
    }

    /// `key` with its first letter lower-cased. The decoder calls this for every key of every answer, so the
    /// usual keys (already camelCase, or an ASCII capital first) cost no Unicode case mapping.
    static func camelCase(_ key: String) -> String {
        guard let first = key.utf8.first else { return key }
        guard first < 0x80 else { return key.prefix(1).lowercased() + key.dropFirst() }
        guard first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z") else { return key }  // lower case, digit, mark
        var bytes = Array(key.utf8)
        bytes[0] = first | 0x20
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Encoder for request bodies (camelCase keys as FlexCharge documents them; nil fields omitted).
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A coding key built from a string.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }
}
