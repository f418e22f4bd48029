/// Timeouts and token policy of a ``FlexChargeClient``.
public struct FlexChargeClientConfiguration: Sendable, Hashable {
    /// Time allowed to establish a connection (used when the client owns its transport).
    public var connectTimeout: Duration
    /// Time allowed for one whole HTTP exchange, from sending to the last response byte.
    public var requestTimeout: Duration
    /// A cached token is renewed this long before its `expires` instant.
    public var tokenRenewalMargin: Duration
    /// Idle pooled connections kept per host (used when the client owns its transport).
    public var maximumConnectionsPerHost: Int

    /// Creates a configuration; the defaults suit the public API.
    public init(
        connectTimeout: Duration = .seconds(5),
        requestTimeout: Duration = .seconds(30),
        tokenRenewalMargin: Duration = .seconds(60),
        maximumConnectionsPerHost: Int = 16
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.tokenRenewalMargin = tokenRenewalMargin
        self.maximumConnectionsPerHost = maximumConnectionsPerHost
    }
}
