/// Timeouts and token policy of a ``FlexChargeClient``.
public struct FlexChargeClientConfiguration: Sendable, Hashable {
    /// Time allowed to establish a connection (used when the client owns its transport).
    public var connectTimeout: Duration
    /// Time allowed for one whole HTTP exchange, from sending to the last response byte.
    public var requestTimeout: Duration
    /// A cached token is renewed this long before its `expires` instant.
    public var tokenRenewalMargin: Duration
    /// Connections open at once per host (scheme, host and port), idle or in use, when the client owns its
    /// transport: a hard cap (at least 1). A call beyond it waits, first come first served, for a connection to be
    /// released; one that reaches its deadline or is cancelled while waiting fails as not sent (retryable).
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
