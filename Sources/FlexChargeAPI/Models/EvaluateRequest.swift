/// The body of `POST /evaluate`: a declined transaction submitted for rescue.
///
/// Written into the outbox as an event's payload, `orderId`, `isMIT`, `siteUrl`, `mid` and `idempotencyKey` are
/// the columns' (order_id, channel, site_url, the credentials' MID, idempotency_key): leave them equal to the
/// columns or out (migrations/0015_what_is_sent.sql).
public struct EvaluateRequest: Codable, Sendable, Hashable {
    public var mid: String?
    /// Your order id (for sync MIT, the same on every retry of one decline).
    public var orderId: String
    /// A fresh GUID per logical request; replaying it within 24 h replays the stored answer.
    public var idempotencyKey: String
    public var isDeclined: Bool
    public var isMIT: Bool
    public var isRecurring: Bool?
    /// `AUTHORIZATION` or `PURCHASE` (default).
    public var transactionType: String?
    /// End of the managed-MIT retry window (ISO-8601 UTC).
    public var expiryDateUtc: String?
    public var siteId: String?
    /// The site the order came from (lets FlexCharge pick the descriptor); else `transaction.descriptor`.
    public var siteUrl: String?
    /// Where the order came from (`ecommerce`, ...); the outbox sends the merchant's call-center marker here for
    /// call-center CIT.
    public var orderSource: String?
    public var customerIp: String?
    public var senseKey: String?
    public var transaction: TransactionDetails
    public var payer: Payer
    public var billingInformation: Address
    public var paymentMethod: PaymentMethodDetails
    public var subscription: SubscriptionDetails?

    /// Creates an evaluate request.
    public init(
        mid: String? = nil, orderId: String, idempotencyKey: String, isDeclined: Bool = true, isMIT: Bool = false,
        transaction: TransactionDetails, payer: Payer, billingInformation: Address, paymentMethod: PaymentMethodDetails,
        transactionType: String? = nil, expiryDateUtc: String? = nil, isRecurring: Bool? = nil,
        siteId: String? = nil, customerIp: String? = nil, senseKey: String? = nil, subscription: SubscriptionDetails? = nil,
        siteUrl: String? = nil, orderSource: String? = nil
    ) {
        self.siteUrl = siteUrl
        self.orderSource = orderSource
        self.mid = mid
        self.orderId = orderId
        self.idempotencyKey = idempotencyKey
        self.isDeclined = isDeclined
        self.isMIT = isMIT
        self.transaction = transaction
        self.payer = payer
        self.billingInformation = billingInformation
        self.paymentMethod = paymentMethod
        self.transactionType = transactionType
        self.expiryDateUtc = expiryDateUtc
        self.isRecurring = isRecurring
        self.siteId = siteId
        self.customerIp = customerIp
        self.senseKey = senseKey
        self.subscription = subscription
    }
}
