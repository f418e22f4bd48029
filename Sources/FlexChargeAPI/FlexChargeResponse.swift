/// A successful FlexCharge call: the decoded body plus what the caller needs for an attempt ledger.
public struct FlexChargeResponse<Body: Sendable>: Sendable {
    /// The decoded response.
    public let body: Body
    /// The HTTP status of the final exchange (2xx).
    public let httpStatus: Int
    /// Duration of the final HTTP exchange (excluding any token request).
    public let latency: Duration
    /// The response body exactly as received, e.g. to store as jsonb.
    public let rawBody: [UInt8]
    /// Whether the bearer token had to be renewed after a 401 during this call.
    public let renewedToken: Bool
}
