/// How the console serves and signs people in (the `console` command's options).
public struct ConsoleConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Session cookies carry `Secure` (sent over HTTPS only: the console sits behind the gateway's TLS
    /// proxy). Off only for plain-HTTP tests on loopback; the command refuses it on other addresses.
    public var secureCookies: Bool
    /// A session ends this long after sign-in, whatever happens.
    public var sessionLifetime: Duration
    /// A session ends after this long without a request.
    public var sessionIdleTimeout: Duration
    /// Sign-in throttling: failed attempts allowed per account and per client address within `window`;
    /// beyond them every attempt is refused (429) until the window has passed.
    public var signInThrottle: SignInThrottle
    /// The trusted SSO header (e.g. `X-Forwarded-User`) set by the proxy after its own sign-in; nil (the
    /// default) ignores any such header. Honoured only from `trustedProxies`.
    public var ssoHeader: String?
    /// Peer addresses (exact IPs) whose `ssoHeader` and `X-Forwarded-For` are believed.
    public var trustedProxies: [String]
    /// How long a client may take to send a request, keep a connection idle, and how many connections are
    /// served at once (the rest wait in the listen backlog).
    public var connections = ConsoleConnectionLimits()

    public init(
        host: String = "127.0.0.1", port: Int = 8090, secureCookies: Bool = true,
        sessionLifetime: Duration = .seconds(12 * 3600), sessionIdleTimeout: Duration = .seconds(3600),
        signInThrottle: SignInThrottle = SignInThrottle(), ssoHeader: String? = nil, trustedProxies: [String] = []
    ) {
        self.host = host
        self.port = port
        self.secureCookies = secureCookies
        self.sessionLifetime = sessionLifetime
        self.sessionIdleTimeout = sessionIdleTimeout
        self.signInThrottle = signInThrottle
        self.ssoHeader = ssoHeader
        self.trustedProxies = trustedProxies
    }
}

/// The console's connection limits (``HTTPServerGuards/GuardedHTTP1Channel``): a request's head and body
/// must arrive within `readTimeout` of its first byte (slow senders are cut off), a connection idle for
/// `idleTimeout` is closed, and at most `maximumConnections` are served at once.
public struct ConsoleConnectionLimits: Sendable {
    public var readTimeout: Duration
    public var idleTimeout: Duration
    public var maximumConnections: Int

    public init(readTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60), maximumConnections: Int = 64) {
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
        self.maximumConnections = maximumConnections
    }
}

/// Failed sign-ins allowed within `window`, per account name and per client address.
public struct SignInThrottle: Sendable {
    public var perAccount: Int
    public var perAddress: Int
    public var window: Duration

    public init(perAccount: Int = 5, perAddress: Int = 20, window: Duration = .seconds(900)) {
        self.perAccount = perAccount
        self.perAddress = perAddress
        self.window = window
    }
}
