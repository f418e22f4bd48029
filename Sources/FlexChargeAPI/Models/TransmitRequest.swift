/// The body of `POST /transmit`: a copy of a processed PSP transaction.
///
/// Written into the outbox as an event's payload, `orderId`, `isMIT`, `siteUrl` and `mid` are the columns'
/// (migrations/0015_what_is_sent.sql): leave them equal to the columns or out.
public struct TransmitRequest: Codable, Sendable, Hashable {
    public var mid: String?
    public var orderId: String
    public var isDeclined: Bool
    public var isMIT: Bool
    public var isRecurring: Bool?
    public var orderSource: String?
    /// The site the order came from (lets FlexCharge pick the descriptor); else `transaction.descriptor`.
    public var siteUrl: String?
    public var transaction: TransactionDetails
    public var payer: Payer
    public var paymentMethod: PaymentMethodDetails
    public var billingInformation: Address?
    public var subscription: SubscriptionDetails?

    /// Creates a transmit request.
    public init(
        mid: String? = nil, orderId: String, isDeclined: Bool, isMIT: Bool = false, transaction: TransactionDetails,
        payer: Payer, paymentMethod: PaymentMethodDetails, billingInformation: Address? = nil,
        isRecurring: Bool? = nil, orderSource: String? = nil, subscription: SubscriptionDetails? = nil,
        siteUrl: String? = nil
    ) {
        self.siteUrl = siteUrl
        self.mid = mid
        self.orderId = orderId
        self.isDeclined = isDeclined
        self.isMIT = isMIT
        self.transaction = transaction
        self.payer = payer
        self.paymentMethod = paymentMethod
        self.billingInformation = billingInformation
        self.isRecurring = isRecurring
        self.orderSource = orderSource
        self.subscription = subscription
    }
}
