/// The answer of `POST /orders/{id}/refund`. A refused refund is HTTP 200 with `success: false`,
/// `status: "FAILED"` and a `responseCode` such as `2001` (amount above the refundable amount).
public struct RefundResponse: Decodable, Sendable, Hashable {
    /// `SUCCESS` or `FAILED`.
    public var status: String?
    public var success: Bool?
    public var responseCode: String?
    public var responseMessage: String?
    public var transactionId: String?
}
