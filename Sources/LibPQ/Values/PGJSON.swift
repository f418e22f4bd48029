import Foundation

/// A `json`/`jsonb` value, kept as its text. Send it with a `$n::jsonb` cast.
public struct PGJSON: Sendable, Hashable, PGTextConvertible {
    /// The JSON text.
    var text: String

    public init(text: String) { self.text = text }

    /// Encodes a Codable value.
    public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws {
        self.text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes the JSON into a Codable type.
    func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(text.utf8))
    }

    init?(pgTextValue: String) { self.text = pgTextValue }
    var pgTextValue: String { text }
}

/// A `bytea` value. Text format is hex (`\x0a1b...`).
public struct PGBytes: Sendable, Hashable, PGTextConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    var pgTextValue: String {
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(Self.hexDigits[Int(byte >> 4)])
            out.append(Self.hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    init?(pgTextValue: String) {
        var text = pgTextValue
        guard let decoded = text.withUTF8(Self.hex) else { return nil }
        self.bytes = decoded
    }

    /// Straight from libpq's bytes (two secrets per claimed event).
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> PGBytes? {
        pgBytes.flatMap(hex).map(PGBytes.init)
    }

    /// `\x0a1b...` decoded into the bytes it spells; `nil` when it is not that.
    private static func hex(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0
        else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var valid = true
        let bytes = [UInt8](unsafeUninitializedCapacity: (text.count - 2) / 2) { out, initialized in
            var i = 2
            while i < text.count {
                guard let high = nibble(text[i]), let low = nibble(text[i + 1]) else {
                    valid = false
                    break
                }
                out[initialized] = high << 4 | low
                initialized += 1
                i += 2
            }
        }
        return valid ? bytes : nil
    }
}
