import Foundation

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
///
/// Parameters are always sent separately from the SQL text (`$1`, `$2`, ...). Where the server
/// cannot infer a type, cast in SQL (`$1::jsonb`, `$2::bigint[]`).
public protocol PGEncodable: Sendable {
    /// The text form of the value; `nil` sends SQL NULL.
    var pgText: String? { get }
    /// The value as it is sent: by default ``pgText`` in the text format, its type left to the server.
    /// ``PGBinaryArray`` sends the binary format instead.
    var pgParameter: PGParameter { get }
}

extension PGEncodable {
    public var pgParameter: PGParameter { PGParameter(text: pgText) }
}

/// A Swift value that can be read from a column in PostgreSQL's text format.
public protocol PGDecodable {
    /// Parses the text form; `nil` text is SQL NULL. Returns `nil` when the value does not fit.
    static func decode(pgText: String?) -> Self?
    /// Parses the text form's UTF-8 bytes where libpq holds them (`nil`: SQL NULL), the same as
    /// ``decode(pgText:)``. The default makes a String of them; integers, times and `bytea` read the
    /// bytes directly (most of a claimed event's columns).
    static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Self?
}

extension PGDecodable {
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Self? {
        decode(pgText: pgBytes.map { String(decoding: $0, as: UTF8.self) })
    }
}

/// An integer's text (`-12`, `+7`, `0042`) parsed as `Int(_:)` parses it: an optional sign, then at
/// least one ASCII digit and nothing else; `nil` when it does not fit.
@usableFromInline
func parseInteger<T: FixedWidthInteger>(_ bytes: UnsafeBufferPointer<UInt8>) -> T? {
    var i = 0
    var negative = false
    if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
        negative = first == UInt8(ascii: "-")
        i = 1
    }
    guard i < bytes.count else { return nil }
    var value: T = 0
    while i < bytes.count {
        let digit = bytes[i] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(T(digit)) : shifted.addingReportingOverflow(T(digit))
        guard !overflow1 && !overflow2 else { return nil }
        value = next
        i += 1
    }
    return value
}

/// A value that can be both sent and read.
public typealias PGCodable = PGEncodable & PGDecodable

/// Types whose text form is a single token, decoded from non-NULL text only.
protocol PGTextConvertible: PGCodable {
    init?(pgTextValue: String)
    var pgTextValue: String { get }
}

extension PGTextConvertible {
    public var pgText: String? { pgTextValue }
    public static func decode(pgText: String?) -> Self? { pgText.flatMap(Self.init(pgTextValue:)) }
}

extension String: PGTextConvertible {
    init?(pgTextValue: String) { self = pgTextValue }
    var pgTextValue: String { self }
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> String? { pgBytes.map { String(decoding: $0, as: UTF8.self) } }
}

extension Int: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Int? { pgBytes.flatMap(parseInteger) }
}

extension Int64: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Int64? { pgBytes.flatMap(parseInteger) }
}

extension Int32: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Int32? { pgBytes.flatMap(parseInteger) }
}

extension Int16: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Int16? { pgBytes.flatMap(parseInteger) }
}

extension Double: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
}

extension Bool: PGTextConvertible {
    init?(pgTextValue: String) {
        switch pgTextValue {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
    var pgTextValue: String { self ? "t" : "f" }
}

extension UUID: PGTextConvertible {
    init?(pgTextValue: String) { self.init(uuidString: pgTextValue) }
    var pgTextValue: String { uuidString.lowercased() }
}

extension Optional: PGEncodable where Wrapped: PGEncodable {
    public var pgText: String? { self?.pgText }
    public var pgParameter: PGParameter { self?.pgParameter ?? PGParameter(text: nil) }
}

extension Optional: PGDecodable where Wrapped: PGDecodable {
    @inlinable
    public static func decode(pgText: String?) -> Wrapped?? {
        guard let pgText else { return .some(nil) }
        return Wrapped.decode(pgText: pgText).map { .some($0) }
    }

    @inlinable
    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Wrapped?? {
        guard let pgBytes else { return .some(nil) }
        return Wrapped.decode(pgBytes: pgBytes).map { .some($0) }
    }
}
