import Foundation

/// One-dimensional arrays (`text[]`, `bigint[]`, `uuid[]`, ...) in PostgreSQL's array literal
/// syntax: `{"a","b",NULL}`. Every element is quoted and escaped on the way out.
extension Array: PGEncodable where Element: PGEncodable {
    // Built as bytes: this runs for every column of every batched write (one literal per column).
    // It is reached unspecialized (a statement's parameters are `any PGEncodable`): generic, each element cost
    // about 1 100 instructions of metadata and value witnesses (callgrind, scripts/callgrind-worker). The element
    // types of the worker's batched writes are recognized by their metatype (one comparison) and get a
    // specialized copy of ``arrayLiteral(_:)`` (inlined into each branch: the optimizer does not specialize a
    // static generic of this unspecialized extension on its own); any other type takes the generic one.
    public var pgText: String? {
        if Element.self == String.self { return arrayLiteral(unsafeBitCast(self, to: [String].self)) }
        if Element.self == String?.self { return arrayLiteral(unsafeBitCast(self, to: [String?].self)) }
        if Element.self == Int64.self { return arrayLiteral(unsafeBitCast(self, to: [Int64].self)) }
        if Element.self == Int.self { return arrayLiteral(unsafeBitCast(self, to: [Int].self)) }
        if Element.self == Int?.self { return arrayLiteral(unsafeBitCast(self, to: [Int?].self)) }
        if Element.self == Double.self { return arrayLiteral(unsafeBitCast(self, to: [Double].self)) }
        if Element.self == Date.self { return arrayLiteral(unsafeBitCast(self, to: [Date].self)) }
        if Element.self == Date?.self { return arrayLiteral(unsafeBitCast(self, to: [Date?].self)) }
        return arrayLiteral(self)
    }
}

/// `{"a","b",NULL}`: every element quoted, `"` and `\` escaped.
@inline(__always)
func arrayLiteral<Value: PGEncodable>(_ values: [Value]) -> String {
    let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    var literal: [UInt8] = [UInt8(ascii: "{")]
    literal.reserveCapacity(values.count * 24 + 2)
    for i in values.indices {
        if i > 0 { literal.append(UInt8(ascii: ",")) }
        guard var text = values[i].pgText else {
            literal.append(contentsOf: "NULL".utf8)
            continue
        }
        literal.append(quote)
        text.withUTF8 { utf8 in
            if utf8.contains(where: { $0 == quote || $0 == backslash }) {
                for byte in utf8 {
                    if byte == quote || byte == backslash { literal.append(backslash) }
                    literal.append(byte)
                }
            } else {
                literal.append(contentsOf: utf8)  // the usual element (an id, a state, a time): copied whole
            }
        }
        literal.append(quote)
    }
    literal.append(UInt8(ascii: "}"))
    return String(decoding: literal, as: UTF8.self)
}

extension Array: PGDecodable where Element: PGDecodable {
    public static func decode(pgText: String?) -> [Element]? {
        guard let pgText, let items = parseArrayLiteral(pgText) else { return nil }
        var out: [Element] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let value = Element.decode(pgText: item) else { return nil }
            out.append(value)
        }
        return out
    }
}

/// Splits a one-dimensional array literal into element texts (`nil` for an unquoted NULL).
func parseArrayLiteral(_ text: String) -> [String?]? {
    let chars = Array(text)
    guard chars.first == "{", chars.last == "}" else { return nil }
    var items: [String?] = []
    var i = 1
    let end = chars.count - 1
    if end == 1 { return [] }
    while i < end {
        if chars[i] == "\"" {
            var value = ""
            i += 1
            while i < end && chars[i] != "\"" {
                if chars[i] == "\\" { i += 1 }
                guard i < end else { return nil }
                value.append(chars[i])
                i += 1
            }
            i += 1  // closing quote
            items.append(value)
        } else {
            var value = ""
            while i < end && chars[i] != "," {
                value.append(chars[i])
                i += 1
            }
            items.append(value == "NULL" ? nil : value)
        }
        if i < end {
            guard chars[i] == "," else { return nil }
            i += 1
        }
    }
    return items
}
