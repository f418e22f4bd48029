import Foundation

/// The body of `POST /orders/{id}/refund`: the amount in decimal dollars, exactly (`1234` cents → `12.34`;
/// `Decimal` has no binary rounding), and an optional message.
///
/// (The outbox builds this body in SQL, with every other body: `flexcharge.request_body()`,
/// migrations/0015_what_is_sent.sql. This model serves ``FlexChargeClient/refund(orderId:amountCents:message:credentials:)``.)
public struct RefundRequest: Encodable, Sendable, Hashable {
    public var amountToRefund: Decimal
    public var refundMessage: String?

    /// Creates a refund request for `amountCents` cents.
    public init(amountCents: Int, message: String? = nil) {
        amountToRefund = Decimal(sign: amountCents < 0 ? .minus : .plus, exponent: -2,
                                 significand: Decimal(amountCents.magnitude))
        refundMessage = message
    }
}
