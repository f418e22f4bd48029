/// The answer of `POST /evaluate`.
public struct EvaluateResponse: Decodable, Sendable, Hashable {
    /// FlexCharge's id for this order (used for outcome, orders, cancel, refund).
    public var orderSessionKey: String?
    /// FlexCharge's order id (equals `orderSessionKey`; not your merchant order id).
    public var orderId: String?
    /// `APPROVED`, `DECLINED`, `CHALLENGE`, `SUBMITTED` or `CAPTUREREQUIRED`.
    public var status: String?
    public var success: Bool?
    public var result: String?
    public var senseKey: String?
}
