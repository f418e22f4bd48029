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
        case let flag as Bool: output += flag ? Array("true".utf8) : Array("false".utf8)
        case let number as Int: output += Array(String(number).utf8)
        case let number as Int64: output += Array(String(number).utf8)
        case let number as Double: output += Array(String(number).utf8)
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
            output += Array("null".utf8)
        }
    }

    private static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20: output += Array(String(format: "\\u%04x", byte).utf8)
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
