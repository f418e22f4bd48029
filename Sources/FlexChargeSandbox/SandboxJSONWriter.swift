import Foundation

/// A small, fast JSON writer for the sandbox's answers (Foundation's `JSONSerialization` bridges through
/// NSDictionary and dominated the request cost). Keys are written sorted, so equal objects give equal bytes.
enum SandboxJSONWriter {
    /// The JSON bytes of `value`: dictionaries, arrays, strings, integers, doubles, booleans and `NSNull`.
    static func bytes(_ value: Any) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(value, into: &output)
        return output
    }

    private static func write(_ value: Any, into output: inout [UInt8]) {
        switch value {
        case let text as String: writeString(text, into: &output)
        case let raw as Raw: output.append(contentsOf: raw.bytes)
        case let flag as Bool: output.append(contentsOf: flag ? "true".utf8 : "false".utf8)
        case let number as Int: writeInteger(Int64(number), into: &output)
        case let number as Int64: writeInteger(number, into: &output)
        case let number as Double: output.append(contentsOf: String(number).utf8)
        case let object as [String: Any]:
            output.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                write(object[key]!, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        case let array as [Any]:
            output.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        default:
            output.append(contentsOf: "null".utf8)
        }
    }

    /// Already-encoded JSON, inserted as is (e.g. an object built with ``ObjectWriter``).
    struct Raw: Sendable {
        var bytes: [UInt8]
    }

    /// Writes one JSON object field by field, without boxing values in `Any` (for hot answers such as
    /// `GET /orders/{id}`). Callers add keys in sorted order to match ``bytes(_:)``.
    struct ObjectWriter {
        private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]

        init() { bytes.reserveCapacity(512) }

        mutating func add(_ key: String, _ value: String?) {
            writeKey(key)
            if let value { writeString(value, into: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
        }

        mutating func add(_ key: String, _ value: Int) {
            writeKey(key)
            writeInteger(Int64(value), into: &bytes)
        }

        mutating func add(_ key: String, _ value: Bool) {
            writeKey(key)
            bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        }

        /// The finished object.
        consuming func finish() -> [UInt8] {
            bytes.append(UInt8(ascii: "}"))
            return bytes
        }

        private mutating func writeKey(_ key: String) {
            if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
            writeString(key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
        }
    }

    /// Decimal digits without going through `String`.
    fileprivate static func writeInteger(_ number: Int64, into output: inout [UInt8]) {
        if number < 0 { output.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        let start = output.count
        repeat {
            output.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        output[start...].reverse()
    }

    fileprivate static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Most strings need no escaping: copy them whole.
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                output.append(contentsOf: utf8)
                return
            }
            for byte in utf8 { writeEscaped(byte, into: &output) }
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func writeEscaped(_ byte: UInt8, into output: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
        case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
        case UInt8(ascii: "\n"): output.append(contentsOf: #"\n"#.utf8)
        case UInt8(ascii: "\r"): output.append(contentsOf: #"\r"#.utf8)
        case UInt8(ascii: "\t"): output.append(contentsOf: #"\t"#.utf8)
        case 0..<0x20: output.append(contentsOf: String(format: "\\u%04x", byte).utf8)
        default: output.append(byte)
        }
    }
}
