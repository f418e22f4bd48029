/// A fast path in front of `JSONDecoder` for small answers read on every event (a transmit's): the top-level
/// string, boolean or null members a model needs, read from a JSON object whose every other value is validated
/// and skipped.
///
/// It only answers when the result is certainly what `JSONDecoder` would give; anything it does not handle
/// answers `nil`, and the caller decodes with `JSONDecoder` as before (so every error, and every key-case rule of
/// ``FlexChargeJSON``, stays where it was). `nil` for: a top-level key that does not start with `a`–`z` (the
/// PascalCase mapping), any escape or non-ASCII byte in a key or a wanted value, a wanted key twice, a wanted key
/// whose value is not of the wanted kind, invalid JSON, nesting deeper than 32, a number longer than 40 bytes.
///
/// Measured: a 7-key transmit answer took about 30 k instructions through `JSONDecoder`.
enum FlatJSON {
    /// A wanted member's value.
    enum Value: Equatable {
        case absent, null, bool(Bool), string(String)
    }

    /// The values of `keys` in the object `json` (``Value/absent`` for a missing key), or `nil` (see above).
    static func read(_ json: [UInt8], keys: [StaticString]) -> [Value]? {
        json.withUnsafeBufferPointer { bytes in
            var reader = Reader(bytes: bytes)
            return reader.object(keys: keys)
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func object(keys: [StaticString]) -> [Value]? {
            var values = [Value](repeating: .absent, count: keys.count)
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            skipSpace()
            if !take(UInt8(ascii: "}")) {
                repeat {
                    skipSpace()
                    guard let key = simpleString(), let first = key.first,
                          first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z") else { return nil }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipSpace()
                    if let wanted = keys.firstIndex(where: { Self.equal(key, $0) }) {
                        guard values[wanted] == .absent, let value = wantedValue() else { return nil }
                        values[wanted] = value
                    } else {
                        guard skipValue(depth: 1) else { return nil }
                    }
                    skipSpace()
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "}")) else { return nil }
            }
            skipSpace()
            return index == bytes.count ? values : nil
        }

        private mutating func wantedValue() -> Value? {
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return simpleString().map { .string(String(decoding: $0, as: UTF8.self)) }
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            default: return nil
            }
        }

        /// A string of printable ASCII without escapes, its bytes without the quotes.
        private mutating func simpleString() -> UnsafeBufferPointer<UInt8>? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return UnsafeBufferPointer(rebasing: bytes[start..<(index - 1)])
                }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            return nil
        }

        /// Validates and skips one value (ASCII only; escapes checked).
        private mutating func skipValue(depth: Int) -> Bool {
            guard depth <= 32, index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""): return skipString()
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if take(UInt8(ascii: "}")) { return true }
                repeat {
                    skipSpace()
                    guard skipString() else { return false }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return false }
                    skipSpace()
                    guard skipValue(depth: depth + 1) else { return false }
                    skipSpace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "}"))
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if take(UInt8(ascii: "]")) { return true }
                repeat {
                    skipSpace()
                    guard skipValue(depth: depth + 1) else { return false }
                    skipSpace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "]"))
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            default: return skipNumber()
            }
        }

        private mutating func skipString() -> Bool {
            guard take(UInt8(ascii: "\"")) else { return false }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""): return true
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return false }
                    let escaped = bytes[index]
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        continue
                    case UInt8(ascii: "u"):
                        // Four hex digits, and no surrogate (whose pairing JSONDecoder checks).
                        guard index + 4 <= bytes.count else { return false }
                        var value = 0
                        for offset in 0..<4 {
                            guard let digit = Self.hex(bytes[index + offset]) else { return false }
                            value = value * 16 + digit
                        }
                        guard !(0xD800...0xDFFF).contains(value) else { return false }
                        index += 4
                    default: return false
                    }
                default:
                    guard byte >= 0x20, byte < 0x7F else { return false }
                }
            }
            return false
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, at most 40 bytes.
        private mutating func skipNumber() -> Bool {
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // no further integer digits
            } else {
                guard digits() > 0 else { return false }
            }
            if take(UInt8(ascii: ".")) { guard digits() > 0 else { return false } }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() > 0 else { return false }
            }
            return index - start <= 40
        }

        private mutating func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += count
            return true
        }

        private mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        private static func hex(_ byte: UInt8) -> Int? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
            default: nil
            }
        }

        private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ key: StaticString) -> Bool {
            guard bytes.count == key.utf8CodeUnitCount else { return false }
            for offset in 0..<bytes.count where bytes[offset] != key.utf8Start[offset] { return false }
            return true
        }
    }
}

/// A model ``FlatJSON`` can read without `JSONDecoder`.
protocol FlatJSONDecodable {
    /// The model read from `json`, or `nil` to decode it with `JSONDecoder`.
    init?(flatJSON json: [UInt8])
}

extension TransmitResponse: FlatJSONDecodable {
    init?(flatJSON json: [UInt8]) {
        guard let values = FlatJSON.read(json, keys: ["transmitId", "result", "success"]) else { return nil }
        func string(_ value: FlatJSON.Value) -> String?? {
            switch value {
            case .absent, .null: .some(nil)
            case .string(let text): .some(text)
            case .bool: nil
            }
        }
        guard let transmitId = string(values[0]), let result = string(values[1]) else { return nil }
        let success: Bool?
        switch values[2] {
        case .absent, .null: success = nil
        case .bool(let flag): success = flag
        case .string: return nil
        }
        self.init(transmitId: transmitId, result: result, success: success)
    }
}
