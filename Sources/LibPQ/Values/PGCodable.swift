import Foundation

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
///
/// Parameters are always sent separately from the SQL text (`$1`, `$2`, ...). Where the server
/// cannot infer a type, cast in SQL (`$1::jsonb`, `$2::bigint[]`).
public protocol PGEncodable: Sendable {
    /// The text form of the value; `nil` sends SQL NULL.
    var pgText: String? { get }
}

/// A Swift value that can be read from a column in PostgreSQL's text format.
public protocol PGDecodable {
    /// Parses the text form; `nil` text is SQL NULL. Returns `nil` when the value does not fit.
    static func decode(pgText: String?) -> Self?
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
}

extension Int: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
}

extension Int64: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
}

extension Int32: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
}

extension Int16: PGTextConvertible {
    init?(pgTextValue: String) { self.init(pgTextValue) }
    var pgTextValue: String { String(self) }
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
}

extension Optional: PGDecodable where Wrapped: PGDecodable {
    @inlinable
    public static func decode(pgText: String?) -> Wrapped?? {
        guard let pgText else { return .some(nil) }
        return Wrapped.decode(pgText: pgText).map { .some($0) }
    }
}
