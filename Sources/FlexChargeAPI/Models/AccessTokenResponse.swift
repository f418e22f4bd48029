/// The answer of `POST /oauth2/token`.
struct AccessTokenResponse: Decodable, Sendable {
    /// The JWT bearer token (never logged).
    var accessToken: String
    /// Expiry instant in milliseconds since the Unix epoch.
    var expires: Int64
}

/// The body of `POST /oauth2/token`.
struct AccessTokenRequest: Encodable, Sendable {
    var AppKey: String
    var AppSecret: String
}
