/// One statement parameter as it goes on the wire: its bytes, the format they are in, and the type the
/// server is told they are.
///
/// Every value is sent in PostgreSQL's text format with its type left to the server (a `$n::type` cast
/// in SQL names it), unless its type says otherwise: ``PGBinaryArray`` sends its bytes in the binary
/// format with the array type's OID, so the server copies them instead of parsing a literal.
public struct PGParameter: Sendable, Equatable {
    enum Value: Sendable, Equatable {
        /// SQL NULL.
        case null
        /// Text format: the server parses the text with the type's input function.
        case text(String)
        /// Binary format: the type's receive function reads these bytes (`type` must be set).
        case binary([UInt8])
    }

    let value: Value
    /// The parameter's type OID; 0 lets the server infer it from the SQL (a cast, the column).
    let type: UInt32

    /// A value in the text format (`nil`: SQL NULL), its type left to the server unless given.
    public init(text: String?, type: UInt32 = 0) {
        self.value = text.map(Value.text) ?? .null
        self.type = type
    }

    /// A value in the binary format of the type `type` (an OID, never 0: the server could not tell).
    init(binary bytes: [UInt8], type: UInt32) {
        precondition(type != 0, "a binary parameter needs its type")
        self.value = .binary(bytes)
        self.type = type
    }

    /// Plain text with no type: how every parameter was sent before binary ones existed (the statement
    /// then goes out exactly as it did, with no type, length or format arrays).
    var isUntypedText: Bool {
        if case .binary = value { return false }
        return type == 0
    }
}
