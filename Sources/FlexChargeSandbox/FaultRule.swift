/// A fault the sandbox injects on one route (or all routes).
///
/// A rule fires either for the next `count` matching requests (deterministic) or, when `count` is `nil`, with
/// `probability` on every matching request (drawn from the seeded generator, so runs are repeatable).
public struct FaultRule: Sendable, Hashable, Codable {
    /// What happens to a request the rule fires on.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Answer `status` (500, 502, 503, 504, 408, 409 …) without processing.
        case status
        /// Answer 429 with `Retry-After: retryAfterSeconds` without processing.
        case rateLimit
        /// Reset the TCP connection (RST) before processing: nothing happens.
        case resetBeforeProcessing
        /// Process the request (state changes, ledger records it), then close the connection without a response.
        case resetAfterProcessing
        /// Do not answer until the connection closes, the server stops, or `latencyMilliseconds` pass
        /// (default 10 minutes); then answer 504.
        case hang
        /// Process the request, then answer 200 with a non-JSON body.
        case malformedBody
        /// Delay by `latencyMilliseconds`, then process normally.
        case latency
    }

    /// `METHOD /path` as documented (e.g. `POST /evaluate`, `GET /orders/{id}`), or `*` for every API route.
    public var route: String
    public var kind: Kind
    /// For ``Kind/status``.
    public var status: Int?
    /// For ``Kind/rateLimit``.
    public var retryAfterSeconds: Int?
    /// For ``Kind/latency`` (the delay) and ``Kind/hang`` (the longest wait).
    public var latencyMilliseconds: Int?
    /// Fire on the next `count` matching requests, then retire.
    public var count: Int?
    /// Without `count`: chance of firing per matching request (0...1).
    public var probability: Double?
    /// Only requests of this merchant (the mid of the request's bearer token, or of the app key a
    /// token request carries); `nil`: every merchant. Lets a test fail one merchant's calls while
    /// the others keep flowing.
    public var mid: String?

    /// Creates a rule.
    public init(route: String, kind: Kind, status: Int? = nil, retryAfterSeconds: Int? = nil,
                latencyMilliseconds: Int? = nil, count: Int? = nil, probability: Double? = nil, mid: String? = nil) {
        self.route = route
        self.kind = kind
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
        self.latencyMilliseconds = latencyMilliseconds
        self.count = count
        self.probability = probability
        self.mid = mid
    }

    func matches(_ route: String, mid requestMid: String?) -> Bool {
        (self.route == "*" || self.route == route) && (mid == nil || mid == requestMid)
    }
}
