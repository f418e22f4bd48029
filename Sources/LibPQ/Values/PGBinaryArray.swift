import Foundation

/// A one-dimensional array parameter sent in PostgreSQL's binary format, with its array type's OID.
///
/// A text array literal (`{"1","2"}`) is parsed by the server element by element (`array_in` and the
/// element's input function, about 22 k instructions per event for the outcome writer's 17 arrays); the
/// binary form is copied. Its type is named here (`bigint[]`, `integer[]`, ...), so the server does not
/// infer it; a `$n::bigint[]` cast in the SQL is still allowed (and does nothing). Values mean exactly
/// what the same Swift array sent as text means: NULL elements, ``Date``'s rounding to microseconds and
/// its ±infinity for dates beyond range (``Date/pgUnixMicroseconds``), every `Double` bit pattern
/// (`-0.0`, infinities, NaN).
///
/// Wire format (PostgreSQL's `array_recv`, all big-endian): int32 dimensions (0 for an empty array, else
/// 1), int32 has-NULLs flag, uint32 element type OID, per dimension int32 length and int32 lower bound
/// (1); then per element int32 byte length (-1: NULL) and the element's bytes.
public struct PGBinaryArray: PGEncodable, Equatable {
    enum Elements: Sendable, Equatable {
        case int8([Int64])
        case int4([Int?])
        case float8([Double])
        case text([String?])
        case timestamptz([Date?])
        case jsonb([String?])
    }

    let elements: Elements

    /// `bigint[]`.
    public init(int8 values: [Int64]) { elements = .int8(values) }
    /// `integer[]`. A value beyond `Int32` is refused by the server as it would be in text (the
    /// array goes as a text literal then: see ``pgParameter``).
    public init(int4 values: [Int?]) { elements = .int4(values) }
    /// `float8[]`.
    public init(float8 values: [Double]) { elements = .float8(values) }
    /// `text[]`.
    public init(text values: [String?]) { elements = .text(values) }
    /// `timestamptz[]`.
    public init(timestamptz values: [Date?]) { elements = .timestamptz(values) }
    /// `jsonb[]`, each element JSON text (the server parses it as it parses `$n::jsonb`).
    public init(jsonb values: [String?]) { elements = .jsonb(values) }

    /// The same array as a text literal (what the text format would have sent).
    public var pgText: String? {
        switch elements {
        case .int8(let values): arrayLiteral(values)
        case .int4(let values): arrayLiteral(values)
        case .float8(let values): arrayLiteral(values)
        case .text(let values), .jsonb(let values): arrayLiteral(values)
        case .timestamptz(let values): arrayLiteral(values)
        }
    }

    public var pgParameter: PGParameter {
        switch elements {
        case .int8(let values):
            return Self.encodeFixedWidth(values, type: .int8, width: 8) { $0.appendBigEndian($1) }
        case .int4(let values):
            // Not representable in binary: the literal, so the server's refusal (22003) is the one it was.
            guard values.allSatisfy({ $0.map { Int32(exactly: $0) != nil } ?? true }) else {
                return PGParameter(text: pgText, type: PGArrayType.int4.arrayOID)
            }
            return Self.encode(values, type: .int4, width: 4) { $0.appendBigEndian(Int32(truncatingIfNeeded: $1)) }
        case .float8(let values):
            return Self.encodeFixedWidth(values, type: .float8, width: 8) { $0.appendBigEndian($1.bitPattern) }
        case .timestamptz(let values):
            return Self.encode(values, type: .timestamptz, width: 8) { $0.appendBigEndian($1.pgTimestamp) }
        case .text(let values):
            return Self.encode(values, type: .text, width: 16) { $0.appendUTF8($1) }
        case .jsonb(let values):
            return Self.encode(values, type: .jsonb, width: 64) { $0.append(1); $0.appendUTF8($1) }  // jsonb version 1
        }
    }

    /// The binary array of `values`; `write` appends one non-NULL element's bytes (its length word is
    /// filled in after), `width` is a guess of its size for the buffer's capacity.
    @inline(__always)
    private static func encode<Value>(
        _ values: [Value?], type: PGArrayType, width: Int, _ write: (inout [UInt8], Value) -> Void
    ) -> PGParameter {
        var out = header(type, count: values.count, width: width, hasNulls: values.contains { $0 == nil })
        for value in values {
            guard let value else {
                out.appendBigEndian(Int32(-1))
                continue
            }
            let lengthAt = out.count
            out.appendBigEndian(Int32(0))
            write(&out, value)
            let length = UInt32(out.count - lengthAt - 4)
            for i in 0..<4 { out[lengthAt + i] = UInt8(truncatingIfNeeded: length >> (24 - 8 * i)) }
        }
        return PGParameter(binary: out, type: type.arrayOID)
    }

    /// The same for an array without NULLs of a type whose elements are all `width` bytes (the ids, the
    /// latencies: not copied into optionals first).
    @inline(__always)
    private static func encodeFixedWidth<Value>(
        _ values: [Value], type: PGArrayType, width: Int, _ write: (inout [UInt8], Value) -> Void
    ) -> PGParameter {
        var out = header(type, count: values.count, width: width, hasNulls: false)
        for value in values {
            out.appendBigEndian(Int32(width))
            write(&out, value)
        }
        return PGParameter(binary: out, type: type.arrayOID)
    }

    /// Dimensions, NULL flag, element type, and the one dimension's length and lower bound (none when
    /// empty: `'{}'` has no dimensions either).
    @inline(__always)
    private static func header(_ type: PGArrayType, count: Int, width: Int, hasNulls: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + count * (4 + width))
        out.appendBigEndian(Int32(count == 0 ? 0 : 1))
        out.appendBigEndian(Int32(hasNulls ? 1 : 0))
        out.appendBigEndian(type.elementOID)
        if count > 0 {
            out.appendBigEndian(Int32(count))
            out.appendBigEndian(Int32(1))
        }
        return out
    }
}

/// The element types ``PGBinaryArray`` sends, with their OIDs (`pg_type`: fixed since PostgreSQL 9.4).
enum PGArrayType {
    case int8, int4, float8, text, timestamptz, jsonb

    var elementOID: UInt32 {
        switch self {
        case .int8: 20
        case .int4: 23
        case .float8: 701
        case .text: 25
        case .timestamptz: 1184
        case .jsonb: 3802
        }
    }

    var arrayOID: UInt32 {
        switch self {
        case .int8: 1016
        case .int4: 1007
        case .float8: 1022
        case .text: 1009
        case .timestamptz: 1185
        case .jsonb: 3807
        }
    }
}

extension Date {
    /// `timestamptz`'s binary form: microseconds since 2000-01-01 00:00 UTC, or PostgreSQL's
    /// `infinity` / `-infinity` (the largest and smallest int64), by the same rule as the text form.
    var pgTimestamp: Int64 {
        guard let micros = pgUnixMicroseconds else { return timeIntervalSince1970 > 0 ? .max : .min }
        return micros - 946_684_800_000_000
    }
}

extension [UInt8] {
    @inline(__always)
    mutating func appendBigEndian<I: FixedWidthInteger>(_ value: I) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}
