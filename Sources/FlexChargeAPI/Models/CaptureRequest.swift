/// The body of `POST /capture` for an order in `CAPTUREREQUIRED`.
public struct CaptureRequest: Codable, Sendable, Hashable {
    public var idempotencyKey: String
    /// The FlexCharge order id returned by `/evaluate`.
    public var orderId: String
    /// Amount in cents.
    public var amount: Int
    public var currency: String

    /// Creates a capture request.
    public init(idempotencyKey: String, orderId: String, amount: Int, currency: String = "USD") {
        self.idempotencyKey = idempotencyKey
        self.orderId = orderId
        self.amount = amount
        self.currency = currency
    }
}
