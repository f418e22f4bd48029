/// The credentials of one merchant account at FlexCharge.
///
/// `description` and `debugDescription` never show the API secret or the tokenization key, and show only a short
/// prefix of the API key, so credentials can be logged or interpolated safely.
public struct MerchantCredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The merchant identification number (a GUID).
    public var mid: String
    /// The API key (`AppKey`), sent with the secret to obtain a bearer token.
    public var appKey: String
    /// The API secret (`AppSecret`). Never logged.
    public var appSecret: String
    /// The tokenization key, passed as `environment` to `/tokenize` only. Never logged.
    public var tokenizationKey: String?

    /// Creates credentials for one merchant.
    public init(mid: String, appKey: String, appSecret: String, tokenizationKey: String? = nil) {
        self.mid = mid
        self.appKey = appKey
        self.appSecret = appSecret
        self.tokenizationKey = tokenizationKey
    }

    public var description: String {
        "MerchantCredentials(mid: \(mid), appKey: \(appKey.prefix(4))…, appSecret: <redacted>"
            + (tokenizationKey == nil ? ")" : ", tokenizationKey: <redacted>)")
    }

    public var debugDescription: String { description }
}
