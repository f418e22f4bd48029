/// The answer of `POST /transmit`.
public struct TransmitResponse: Decodable, Sendable, Hashable {
    /// The transaction key FlexCharge assigned.
    public var transmitId: String?
    /// `"success"` on a good call.
    public var result: String?
    public var success: Bool?
}
