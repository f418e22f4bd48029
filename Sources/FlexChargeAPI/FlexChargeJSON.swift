import Foundation

/// The JSON coders used for FlexCharge bodies.
enum FlexChargeJSON {
    /// Decoder that tolerates PascalCase keys (FlexCharge binds case-insensitively and its docs mix cases):
    /// the first letter of every key is lower-cased before matching the camelCase model properties.
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in
            let key = path.last?.stringValue ?? ""
            return AnyKey(key.prefix(1).lowercased() + key.dropFirst())
        }
        return decoder
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
