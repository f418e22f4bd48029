import Foundation

/// Where a channel's events go.
public enum ChannelSwitch: String, Sendable, CaseIterable, Codable {
    case off, sandbox, production

    /// The word a site's override takes to follow the merchant's switch again.
    public static let inherit = "inherit"

    /// A switch as an operator writes it (CLI option, console form): `off`, `sandbox`, `production`,
    /// and for a site (`allowInherit`) `inherit`, read as `.some(nil)`. Nil when it is none of them.
    public static func parse(_ text: String, allowInherit: Bool) -> ChannelSwitch?? {
        if allowInherit && text == inherit { return .some(nil) }
        return ChannelSwitch(rawValue: text).map { .some($0) }
    }
}

/// The three channels a merchant switches independently.
public enum Channel: String, Sendable, CaseIterable, Codable {
    case citWebsite = "cit_website"
    case citCallCenter = "cit_call_center"
    case mit
}

/// A merchant's switches (and, for a site, its overrides: `nil` inherits the merchant's).
public struct MerchantSettings: Sendable, Equatable, Codable {
    public var merchantID: String
    public var name: String?
    public var switches: [Channel: ChannelSwitch]
    public var sites: [String: [Channel: ChannelSwitch]]
    /// Environments that have credentials, with their MID (the secrets are never read back).
    public var credentials: [String: String]
    /// What marks its call-center CIT events at FlexCharge.
    public var callCenter: CallCenterMarker
    /// Its calls toward FlexCharge a second per environment, shared by all workers; `nil`: no limit.
    public var rateLimit: MerchantRateLimit? = nil

    public init(merchantID: String, name: String? = nil, switches: [Channel: ChannelSwitch] = [:],
                sites: [String: [Channel: ChannelSwitch]] = [:], credentials: [String: String] = [:],
                callCenter: CallCenterMarker = .default) {
        self.merchantID = merchantID
        self.name = name
        self.switches = switches
        self.sites = sites
        self.credentials = credentials
        self.callCenter = callCenter
    }
}

/// The secrets of one environment, as read from stdin or a file.
public struct MerchantSecrets: Sendable {
    public var appKey: String
    public var appSecret: String
    public var tokenizationKey: String?
    public var webhookKey: String?

    public init(appKey: String, appSecret: String, tokenizationKey: String? = nil, webhookKey: String? = nil) {
        self.appKey = appKey
        self.appSecret = appSecret
        self.tokenizationKey = tokenizationKey
        self.webhookKey = webhookKey
    }

    /// Parses `key=value` lines: app_key, app_secret, tokenization_key, webhook_key. Errors name
    /// the line's key, never its value.
    public static func parse(_ text: String) throws(CredentialError) -> MerchantSecrets {
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw CredentialError("each secrets line must be key=value (app_key, app_secret, tokenization_key, webhook_key)")
            }
            let key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
            guard ["app_key", "app_secret", "tokenization_key", "webhook_key"].contains(key) else {
                throw CredentialError("unknown secrets key \(key): use app_key, app_secret, tokenization_key, webhook_key")
            }
            values[key] = String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let appKey = values["app_key"], !appKey.isEmpty else { throw CredentialError("app_key is missing from the secrets") }
        guard let appSecret = values["app_secret"], !appSecret.isEmpty else {
            throw CredentialError("app_secret is missing from the secrets")
        }
        return MerchantSecrets(appKey: appKey, appSecret: appSecret, tokenizationKey: values["tokenization_key"],
                               webhookKey: values["webhook_key"])
    }
}
