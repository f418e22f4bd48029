import Foundation
import LibPQ

/// Which credentials a merchant has stored for one environment: never a value, only whether each
/// secret is set, the MID (not secret), the sealing key's id and when it was stored.
public struct CredentialStatus: Sendable, Equatable {
    public let environment: String
    public let mid: String
    /// app_key and app_secret are always set (a row cannot exist without them).
    public let hasTokenizationKey: Bool
    public let hasWebhookKey: Bool
    public let keyID: String
    public let updatedAt: Date
}

extension MerchantStore {
    /// The credentials stored per environment (sandbox before production); the sealed values are
    /// not read.
    public func credentialStatus(_ merchantID: String) async throws -> [CredentialStatus] {
        try await session.query(
            """
            SELECT environment, mid, tokenization_key_sealed IS NOT NULL AS has_tokenization_key,
                   webhook_key_sealed IS NOT NULL AS has_webhook_key, key_id, updated_at
              FROM flexcharge.merchant_credentials WHERE merchant_id = $1 ORDER BY environment DESC
            """, [merchantID]
        ).rows.map {
            CredentialStatus(
                environment: try $0.decode("environment"), mid: try $0.decode("mid"),
                hasTokenizationKey: try $0.decode("has_tokenization_key"), hasWebhookKey: try $0.decode("has_webhook_key"),
                keyID: try $0.decode("key_id"), updatedAt: try $0.decode("updated_at"))
        }
    }
}
