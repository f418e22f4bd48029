/// An order as returned by `GET /orders/{id}` and listed by `GET /orders`.
public struct Order: Decodable, Sendable, Hashable {
    /// FlexCharge order id (= `orderSessionKey`).
    public var id: String
    /// `0` Draft, `1` Onhold, `2` Cancelled, `3` Problem, `4` Processing, `5` Capturerequired, `6` Returned,
    /// `7` Completed.
    public var status: Int?
    /// Upper-case status name, e.g. `CAPTUREREQUIRED`.
    public var statusName: String?
    /// Your order id (`externalOrderId` in webhooks).
    public var referenceNumber: String?
    public var mid: String?
    /// Amount in cents.
    public var amount: Int?
    /// Cents refunded so far on the order. The sandbox reports it; FlexCharge's public docs list only the
    /// first part of the order's fields (flexcharge-api.md §6.2), so a refund whose outcome depends on it
    /// is left to an operator when it is missing.
    public var refundedAmount: Int?
    public var currencyCode: String?
    public var orderPlacedDate: String?
    public var expiryDate: String?
    public var email: String?
    /// The payer's names (listed among the order's fields in flexcharge-api.md §6.2).
    public var firstName: String?
    public var lastName: String?
}
