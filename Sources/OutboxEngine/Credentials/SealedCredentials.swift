import Foundation
import LibPQ

/// A secret column of `flexcharge.merchant_credentials` (the column is `<rawValue>_sealed`).
enum CredentialField: String, Sendable, CaseIterable {
    case appKey = "app_key"
    case appSecret = "app_secret"
    case tokenizationKey = "tokenization_key"
    case webhookKey = "webhook_key"

    var column: String { rawValue + "_sealed" }
}

/// What a sealed value belongs to: it opens only there (AES-GCM associated data).
struct CredentialBinding: Sendable, Hashable, CustomStringConvertible {
    let merchantID: String
    let environment: String
    let field: CredentialField

    init(merchantID: String, environment: String, field: CredentialField) {
        self.merchantID = merchantID
        self.environment = environment
        self.field = field
    }

    /// `flexcharge-outbox/v2|<merchant_id>|<environment>|<field>`.
    var associatedData: Data { Data("flexcharge-outbox/v2|\(merchantID)|\(environment)|\(field.rawValue)".utf8) }

    /// Names the value, for errors: `merchant m1, sandbox app_secret`.
    var description: String { "merchant \(merchantID), \(environment) \(field.rawValue)" }
}

/// One stored secret, as read: its place, its sealed bytes, and the row's `key_id`.
struct SealedSecret: Sendable {
    enum Content: Sendable {
        case sealed([UInt8])
        /// The column is NULL.
        case absent
        /// The column was not read (not needed for the purpose it was read for).
        case notRead
    }

    let binding: CredentialBinding
    let content: Content
    let recordedKeyID: String?

    init(binding: CredentialBinding, content: Content, recordedKeyID: String?) {
        self.binding = binding
        self.content = content
        self.recordedKeyID = recordedKeyID
    }
}

/// What a reader needs from a merchant's credentials.
enum CredentialPurpose: Sendable {
    /// API calls: app key and secret (worker, outcome poller, reconciler).
    case api
    /// `POST /tokenize`: the tokenization key only.
    case tokenization
    /// Webhook signatures: the webhook subscriber key only.
    case webhook

    var fields: [CredentialField] {
        switch self {
        case .api: [.appKey, .appSecret]
        case .tokenization: [.tokenizationKey]
        case .webhook: [.webhookKey]
        }
    }
}

/// One row of `flexcharge.merchant_credentials` as stored: sealed, plus the row's version
/// (`updated_at`) for caching the opened form. Only the secret columns that were selected are
/// present; the others are `.notRead`. Open it with ``CredentialSealer``.
struct SealedCredentials: Sendable {
    let merchantID: String
    let environment: String
    let mid: String
    /// The key the row records as its sealer (`key_id`).
    let keyID: String?
    let appKey: SealedSecret
    let appSecret: SealedSecret
    let tokenizationKey: SealedSecret
    let webhookKey: SealedSecret
    let version: Date

    /// Where the credential columns are in a result: `merchant_id`, `environment`, `mid` (NULL: no
    /// credentials, nil), `key_id` (optional), `credentials_updated_at`, and any of the `*_sealed` columns.
    /// Resolved once per result by a reader of many rows (the claim), else per row.
    struct Columns {
        let merchantID, environment, mid, version: Int
        let keyID, appKey, appSecret, tokenizationKey, webhookKey: Int?

        init(_ result: some PGColumnPositions) throws(PGError) {
            mid = try result.position(of: "mid")
            merchantID = try result.position(of: "merchant_id")
            environment = try result.position(of: "environment")
            version = try result.position(of: "credentials_updated_at")
            keyID = result.positionIfPresent(of: "key_id")
            appKey = result.positionIfPresent(of: CredentialField.appKey.column)
            appSecret = result.positionIfPresent(of: CredentialField.appSecret.column)
            tokenizationKey = result.positionIfPresent(of: CredentialField.tokenizationKey.column)
            webhookKey = result.positionIfPresent(of: CredentialField.webhookKey.column)
        }

        /// The position of a secret's column; `nil`: not selected.
        func position(of field: CredentialField) -> Int? {
            switch field {
            case .appKey: appKey
            case .appSecret: appSecret
            case .tokenizationKey: tokenizationKey
            case .webhookKey: webhookKey
            }
        }
    }

    /// The one decoder of credential columns, for every query that selects them (see ``Columns``).
    init?(row: PGRow) throws(PGError) {
        try self.init(row: row, columns: Columns(row))
    }

    init?(row: PGRow, columns: Columns) throws(PGError) {
        guard let mid = try row.decode(columns.mid, as: String?.self) else { return nil }
        let merchantID: String = try row.decode(columns.merchantID)
        let environment: String = try row.decode(columns.environment)
        let keyID: String? = try columns.keyID.map { (at) throws(PGError) -> String? in try row.decode(at) } ?? nil
        func secret(_ field: CredentialField) throws(PGError) -> SealedSecret {
            let binding = CredentialBinding(merchantID: merchantID, environment: environment, field: field)
            guard let at = columns.position(of: field) else {
                return SealedSecret(binding: binding, content: .notRead, recordedKeyID: keyID)
            }
            let bytes = try row.decode(at, as: PGBytes?.self)?.bytes
            return SealedSecret(binding: binding, content: bytes.map { .sealed($0) } ?? .absent, recordedKeyID: keyID)
        }
        self.merchantID = merchantID
        self.environment = environment
        self.mid = mid
        self.keyID = keyID
        appKey = try secret(.appKey)
        appSecret = try secret(.appSecret)
        tokenizationKey = try secret(.tokenizationKey)
        webhookKey = try secret(.webhookKey)
        version = try row.decode(columns.version)
    }

    /// A merchant's credentials for `purpose`, in `environment` or in every environment (sorted by
    /// name), reading only the secret columns the purpose needs.
    static func load(
        _ purpose: CredentialPurpose, merchantID: String, environment: String? = nil, on session: PGSession
    ) async throws -> [SealedCredentials] {
        // Column names come from CredentialField, never from input.
        let columns = purpose.fields.map(\.column).joined(separator: ", ")
        return try await session.query(
            """
            SELECT merchant_id, environment, mid, key_id, updated_at AS credentials_updated_at, \(columns)
              FROM flexcharge.merchant_credentials
             WHERE merchant_id = $1 AND ($2::text IS NULL OR environment = $2::text)
             ORDER BY environment
            """, [merchantID, environment]).rows.compactMap { row throws in try SealedCredentials(row: row) }
    }
}
