/// Everything the sandbox saw and did, for proving "no double charge" (`GET /_sandbox/ledger`).
public struct SandboxLedger: Sendable, Codable, Hashable {
    /// One request received on an API route.
    public struct Request: Sendable, Codable, Hashable {
        /// Sandbox clock time, ISO-8601.
        public var time: String
        /// `METHOD /path-template`, e.g. `POST /evaluate`.
        public var route: String
        public var mid: String?
        /// The merchant's own order id (`orderId` in the body), when there is one.
        public var merchantOrderId: String?
        public var idempotencyKey: String?
        /// HTTP status returned (0 when the connection was closed without a response).
        public var httpStatus: Int
        /// Decision or operation status, e.g. `APPROVED`, `SUBMITTED`, `SUCCESS`, `REPLAYED`.
        public var status: String?
        public var orderSessionKey: String?
        /// Whether the request changed or read state (false for faults that answered before processing).
        public var processed: Bool
        /// The fault that fired, if any (a ``FaultRule/Kind`` raw value).
        public var fault: String?
    }

    /// One charge: an order approved (or captured) — each order appears at most once.
    public struct Charge: Sendable, Codable, Hashable {
        public var time: String
        public var mid: String
        public var merchantOrderId: String
        public var orderSessionKey: String
        public var amountCents: Int
        public var currency: String
    }

    /// One successful refund.
    public struct Refund: Sendable, Codable, Hashable {
        public var time: String
        public var mid: String
        public var orderSessionKey: String
        public var amountCents: Int
    }

    /// One webhook delivery attempt.
    public struct Webhook: Sendable, Codable, Hashable {
        public var time: String
        public var event: String
        public var orderSessionKey: String
        public var url: String
        public var httpStatus: Int?
        public var isResent: Bool
    }

    public var requests: [Request] = []
    public var charges: [Charge] = []
    public var refunds: [Refund] = []
    public var webhooks: [Webhook] = []

    /// Charges per merchant order id (more than one means a double charge).
    public func chargeCount(merchantOrderId: String) -> Int {
        charges.count { $0.merchantOrderId == merchantOrderId }
    }
}
