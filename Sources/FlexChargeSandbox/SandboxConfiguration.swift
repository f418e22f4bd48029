/// How a sandbox merchant account handles merchant-initiated transactions.
public enum MITMode: String, Sendable, Hashable, Codable {
    /// `/evaluate` answers `SUBMITTED`; the order completes or expires later (webhook).
    case managed
    /// `/evaluate` answers the current status in real time; re-sending the same `orderId` returns it again.
    case sync
}

/// One merchant account known to the sandbox.
public struct SandboxMerchant: Sendable, Hashable, Codable {
    public var mid: String
    public var appKey: String
    public var appSecret: String
    public var tokenizationKey: String
    public var mitMode: MITMode
    /// Where webhooks are POSTed; `nil` disables webhooks for this merchant.
    public var webhookURL: String?
    /// Base64 HMAC key for webhook signatures.
    public var webhookSubscriberKey: String?

    /// Creates a merchant account.
    public init(mid: String, appKey: String, appSecret: String, tokenizationKey: String, mitMode: MITMode = .managed,
                webhookURL: String? = nil, webhookSubscriberKey: String? = nil) {
        self.mid = mid
        self.appKey = appKey
        self.appSecret = appSecret
        self.tokenizationKey = tokenizationKey
        self.mitMode = mitMode
        self.webhookURL = webhookURL
        self.webhookSubscriberKey = webhookSubscriberKey
    }

    /// The demo merchant used when none is configured (values printed by `flexcharge-sandbox --help`).
    public static let demo = SandboxMerchant(
        mid: "00000000-0000-4000-8000-000000000001", appKey: "demo-app-key", appSecret: "demo-app-secret",
        tokenizationKey: "demo-tokenization-key", mitMode: .managed,
        webhookSubscriberKey: "ZGVtby13ZWJob29rLXN1YnNjcmliZXIta2V5")
}

/// The shape of 400 validation bodies.
public enum ValidationErrorShape: String, Sendable, Hashable, Codable {
    /// `{"TraceId":[...],"OrderId":["Merchant's orderId is required"]}` (observed on the real sandbox).
    case flat
    /// `{"status":400,"title":"One or more validation errors occurred.","traceId":...,"errors":{...}}` (documented).
    case nested
}

/// How a managed MIT order ends if nothing forces it.
public enum ManagedMITOutcome: String, Sendable, Hashable, Codable {
    /// Completed (charged) after ``SandboxConfiguration/managedMITCompletionDelay``.
    case complete
    /// Left pending until its `expiryDateUtc`, then expired.
    case expire
}

/// Whether the sandbox deduplicates refunds, as FlexCharge's contract says it does.
///
/// The contract (flexcharge-api.md §6.5, §7.4) says `POST /orders/{id}/refund` takes no idempotency key and
/// that FlexCharge "deduplicates per order, never double-refunds"; what counts as a duplicate is not
/// documented. A client must not rely on it, so the worker's tests run against ``strict``.
public enum RefundDeduplication: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every refund request that fits the refundable amount is applied (two identical requests refund twice).
    case strict
    /// The contract's note, read narrowly: a refund of the same amount on the same order within the
    /// idempotency window replays the first answer and refunds nothing more. (So two genuine partial
    /// refunds of the same amount would collapse into one: a reason not to rely on it.)
    case perOrder = "per-order"
}

/// How `GET /orders` reads its `query` parameter. The contract (flexcharge-api.md §6.3) calls it a "string
/// search: merchant name, payer name…" and says nothing about the merchant's order id; a client that finds its
/// order by searching for its own order id relies on a guess, so tests can make the sandbox answer as documented.
public enum OrderSearch: String, Sendable, Hashable, Codable, CaseIterable {
    /// `query` is the merchant's order id, matched exactly (what this simulator always did).
    case orderId = "order-id"
    /// `query` is a name search, as documented: a case-insensitive substring of the payer's first name, last
    /// name or "first last" (from `billingInformation`). A merchant order id finds nothing unless it happens to
    /// occur in a name.
    case name
}

/// What an order's `referenceNumber` holds. The contract describes it only as "reference unique to this
/// request" (§6.2); that it is the merchant's `orderId` is a guess (webhooks carry the merchant's id as
/// `ExternalOrderId`, a documented field).
public enum ReferenceNumbers: String, Sendable, Hashable, Codable, CaseIterable {
    /// The merchant's `orderId` (what this simulator always did).
    case merchantOrderId = "merchant-order-id"
    /// A reference of FlexCharge's own (`FC-` and ten hex digits), unrelated to the merchant's order id.
    case generated
}

/// Everything that configures a ``FlexChargeSandbox``.
public struct SandboxConfiguration: Sendable {
    public var merchants: [SandboxMerchant]
    /// Interface to bind (`127.0.0.1` by default).
    public var host: String
    /// Port to bind; `0` picks a free one.
    public var port: Int
    /// Delay added to every API response (fixed plus uniformly random jitter).
    public var latency: SandboxLatency
    /// Fault rules active from the start.
    public var faults: [FaultRule]
    /// Seed of the random generator used by probabilistic faults and jitter.
    public var randomSeed: UInt64
    /// How long an idempotency key is remembered (24 h).
    public var idempotencyWindow: Duration
    /// Lifetime of bearer tokens (600 s).
    public var tokenTTL: Duration
    public var validationErrorShape: ValidationErrorShape
    /// Sandbox time a managed MIT order stays `SUBMITTED` before it completes.
    public var managedMITCompletionDelay: Duration
    public var managedMITOutcome: ManagedMITOutcome
    /// `Content-Type` of webhook deliveries (FlexCharge may send a non-JSON type).
    public var webhookContentType: String
    /// Deliveries per webhook event before giving up (redeliveries carry `IsResent: true`).
    public var webhookMaxAttempts: Int
    /// Whether repeated refunds of one order are deduplicated (``RefundDeduplication/strict``: never).
    public var refundDeduplication: RefundDeduplication
    /// `IsTestMode` in webhooks: `true` (FlexCharge's sandbox); `false` when this simulator plays production,
    /// whose webhooks the receiver accepts only with `IsTestMode: false`.
    public var isTestMode: Bool
    /// How `GET /orders` reads `query` (``OrderSearch/orderId``: the merchant's order id).
    public var orderSearch: OrderSearch
    /// What `referenceNumber` holds (``ReferenceNumbers/merchantOrderId``).
    public var referenceNumbers: ReferenceNumbers

    /// Creates a configuration; without merchants the ``SandboxMerchant/demo`` merchant is used.
    public init(
        merchants: [SandboxMerchant] = [.demo], host: String = "127.0.0.1", port: Int = 8080,
        latency: SandboxLatency = .none, faults: [FaultRule] = [], randomSeed: UInt64 = 42,
        idempotencyWindow: Duration = .seconds(24 * 3600), tokenTTL: Duration = .seconds(600),
        validationErrorShape: ValidationErrorShape = .flat, managedMITCompletionDelay: Duration = .seconds(3600),
        managedMITOutcome: ManagedMITOutcome = .complete, webhookContentType: String = "application/json",
        webhookMaxAttempts: Int = 3, refundDeduplication: RefundDeduplication = .strict, isTestMode: Bool = true,
        orderSearch: OrderSearch = .orderId, referenceNumbers: ReferenceNumbers = .merchantOrderId
    ) {
        self.merchants = merchants.isEmpty ? [.demo] : merchants
        self.host = host
        self.port = port
        self.latency = latency
        self.faults = faults
        self.randomSeed = randomSeed
        self.idempotencyWindow = idempotencyWindow
        self.tokenTTL = tokenTTL
        self.validationErrorShape = validationErrorShape
        self.managedMITCompletionDelay = managedMITCompletionDelay
        self.managedMITOutcome = managedMITOutcome
        self.webhookContentType = webhookContentType
        self.webhookMaxAttempts = webhookMaxAttempts
        self.refundDeduplication = refundDeduplication
        self.isTestMode = isTestMode
        self.orderSearch = orderSearch
        self.referenceNumbers = referenceNumbers
    }
}

/// A response delay: fixed milliseconds plus a uniformly random part in `0...jitterMilliseconds`.
public struct SandboxLatency: Sendable, Hashable, Codable {
    public var fixedMilliseconds: Int
    public var jitterMilliseconds: Int

    /// Creates a latency.
    public init(fixedMilliseconds: Int = 0, jitterMilliseconds: Int = 0) {
        self.fixedMilliseconds = fixedMilliseconds
        self.jitterMilliseconds = jitterMilliseconds
    }

    /// No delay.
    public static let none = SandboxLatency()

    var isZero: Bool { fixedMilliseconds <= 0 && jitterMilliseconds <= 0 }
}
