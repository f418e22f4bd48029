/// A value's text form as its UTF-8 bytes, unchanged: for text that is only passed on (a request body
/// built by SQL and sent as is), without making a String of it and its bytes again.
public struct PGRawText: Sendable, Hashable, PGDecodable {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public static func decode(pgText: String?) -> PGRawText? { pgText.map { PGRawText(bytes: Array($0.utf8)) } }

    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> PGRawText? { pgBytes.map { PGRawText(bytes: Array($0)) } }
}
