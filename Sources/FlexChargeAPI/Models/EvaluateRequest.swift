/// The body of `POST /evaluate`: a declined transaction submitted for rescue.
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
        siteId: String? = nil, customerIp: String? = nil, senseKey: String? = nil, subscription: SubscriptionDetails? = nil
    ) {
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
