import Crypto
import FlexChargeAPI
import Foundation
import Logging
import Synchronization

/// Seals and opens merchant secrets with AES-256-GCM, using keys that never enter the database,
/// so a dump of `flexcharge.merchant_credentials` reveals nothing usable. It is the one place
/// where secrets are sealed and opened: the worker (``CredentialCache``), the outcome poller, the
/// tokenizer, the reconciler and the webhook receiver all open through it, each only the fields
/// its purpose needs (``apiCredentials(_:)``, ``tokenizationCredentials(_:)``, ``webhookKey(_:)``).
///
/// **Key ring.** Several 32-byte keys can be loaded at once; each is known by its id, the first 8
/// hex digits of its SHA-256 (derived, so it can never be mislabelled). One is the *primary*: new
/// values are sealed with it. The others only open values sealed earlier, which is what lets a key
/// be rotated while workers run (docs/credentials.md). See ``fromEnvironment(_:logger:)``.
///
/// **Sealed format v2** (everything written now):
///
///     "FCO" 0x02 | key-id length (1 byte) | key id (ASCII) | nonce (12) | ciphertext | tag (16)
///
/// with the AES-GCM associated data `flexcharge-outbox/v2|<merchant_id>|<environment>|<field>`,
/// so a value moved to another merchant, environment or field does not open, and the key id in
/// the header (which must also match the row's `key_id`) names the key that opens it.
///
/// **Legacy v1** (before migration 0011): nonce | ciphertext | tag, no associated data, the key
/// named only by the row's `key_id`. Still opened (logged once per row as legacy) unless
/// `FLEXCHARGE_CREDENTIALS_LEGACY=refuse`; `flexcharge-outbox merchant rotate-credentials`
/// re-seals them as v2.
public struct CredentialSealer: Sendable {
    /// One loaded key.
    struct Key: Sendable {
        let id: String
        let bytes: [UInt8]
        var symmetric: SymmetricKey { SymmetricKey(data: bytes) }
    }

    private let keys: [Key]
    private let primary: Key
    /// Whether v1 values (no associated data) are still opened.
    let allowsLegacy: Bool
    private let logger: Logger
    private let legacyLogged: LegacyLog

    /// The primary key's id: what new values are sealed with and recorded in `key_id`.
    public var keyID: String { primary.id }
    /// Every loaded key's id, the primary first.
    public var keyIDs: [String] { [primary.id] + keys.map(\.id).filter { $0 != primary.id } }

    /// A ring of one key (the primary).
    public init(keyBytes: [UInt8], allowsLegacy: Bool = true, logger: Logger = Logger(label: "flexcharge.credentials"))
        throws(CredentialError)
    {
        try self.init(keys: [keyBytes], allowsLegacy: allowsLegacy, logger: logger)
    }

    /// A ring of `keys` (each 32 bytes); the primary is the one whose id is `primaryID`, else the first.
    public init(keys: [[UInt8]], primaryID: String? = nil, allowsLegacy: Bool = true,
                logger: Logger = Logger(label: "flexcharge.credentials")) throws(CredentialError)
    {
        var loaded: [Key] = []
        for (index, bytes) in keys.enumerated() {
            guard bytes.count == 32 else {
                throw CredentialError("credentials key \(index + 1) must be 32 bytes (base64 of 32 random bytes: openssl rand -base64 32)")
            }
            let key = Key(id: Self.id(of: bytes), bytes: bytes)
            if !loaded.contains(where: { $0.id == key.id }) { loaded.append(key) }
        }
        guard let first = loaded.first else { throw CredentialError("no credentials key given") }
        if let primaryID {
            guard let chosen = loaded.first(where: { $0.id == primaryID }) else {
                throw CredentialError("the primary credentials key \(primaryID) is not among the loaded keys (\(loaded.map(\.id).joined(separator: ", ")))")
            }
            primary = chosen
        } else {
            primary = first
        }
        self.keys = loaded
        self.allowsLegacy = allowsLegacy
        self.logger = logger
        self.legacyLogged = LegacyLog()
    }

    /// The id of a key: the first 8 hex digits of its SHA-256 (as stored in `key_id` since v1).
    static func id(of keyBytes: [UInt8]) -> String {
        SHA256.hash(data: keyBytes).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: - Opening for a purpose

    /// The app key and secret, for API calls (the worker, the outcome poller, the reconciler).
    func apiCredentials(_ sealed: SealedCredentials) throws(CredentialError) -> MerchantCredentials {
        MerchantCredentials(mid: sealed.mid, appKey: try open(sealed.appKey), appSecret: try open(sealed.appSecret))
    }

    /// The tokenization key only (`POST /tokenize` takes no bearer token): the app key and secret
    /// are neither read nor opened, and are empty in the result.
    func tokenizationCredentials(_ sealed: SealedCredentials) throws(CredentialError) -> MerchantCredentials {
        MerchantCredentials(mid: sealed.mid, appKey: "", appSecret: "", tokenizationKey: try open(sealed.tokenizationKey))
    }

    /// The webhook subscriber key only.
    func webhookKey(_ sealed: SealedCredentials) throws(CredentialError) -> String {
        try open(sealed.webhookKey)
    }

    // MARK: - Sealing and opening one value

    /// Seals `secret` for `binding` with the primary key (format v2).
    func seal(_ secret: String, for binding: CredentialBinding) throws(CredentialError) -> [UInt8] {
        let id = Array(primary.id.utf8)
        do {
            let box = try AES.GCM.seal(Data(secret.utf8), using: primary.symmetric, authenticating: binding.associatedData)
            return Self.magic + [UInt8(id.count)] + id + Array(box.combined!)
        } catch {
            throw CredentialError("\(binding): could not seal the value")
        }
    }

    /// Opens one stored value. Errors name the merchant, environment and field, never the value.
    func open(_ secret: SealedSecret) throws(CredentialError) -> String {
        let binding = secret.binding
        let bytes: [UInt8]
        switch secret.content {
        case .sealed(let value): bytes = value
        case .absent:
            throw CredentialError("\(binding): none stored (flexcharge-outbox merchant credentials)")
        case .notRead:
            throw CredentialError("\(binding): not read for this purpose")
        }
        guard bytes.starts(with: Self.magic) else { return try openLegacy(bytes, binding: binding, recordedKeyID: secret.recordedKeyID) }
        guard bytes.count > 5, case let idLength = Int(bytes[4]), idLength > 0, bytes.count >= 5 + idLength + 12 + 16,
              let id = String(bytes: bytes[5..<(5 + idLength)], encoding: .ascii) else {
            throw CredentialError("\(binding): the stored value is damaged (bad v2 header)")
        }
        if let recorded = secret.recordedKeyID, recorded != id {
            throw CredentialError("\(binding): sealed with key \(id) but the row records key \(recorded) (moved or altered); store it again")
        }
        guard let key = keys.first(where: { $0.id == id }) else {
            throw CredentialError("\(binding): sealed with key \(id), which is not loaded (loaded: \(keyIDs.joined(separator: ", ")))")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: bytes[(5 + idLength)...])
            return String(decoding: try AES.GCM.open(box, using: key.symmetric, authenticating: binding.associatedData), as: UTF8.self)
        } catch {
            throw CredentialError(
                "\(binding): does not open with key \(id): it was sealed for another merchant, environment or field, or altered; store it again")
        }
    }

    /// Whether `secret` is sealed in format v2 with the primary key (nothing to re-seal).
    func isCurrent(_ secret: SealedSecret) -> Bool {
        guard case .sealed(let bytes) = secret.content else { return true }
        let id = Array(primary.id.utf8)
        return bytes.starts(with: Self.magic + [UInt8(id.count)] + id)
    }

    private func openLegacy(_ bytes: [UInt8], binding: CredentialBinding, recordedKeyID: String?) throws(CredentialError) -> String {
        guard allowsLegacy else {
            throw CredentialError("\(binding): sealed in the legacy v1 format, refused (FLEXCHARGE_CREDENTIALS_LEGACY=refuse); re-seal it with merchant rotate-credentials")
        }
        // v1 values carry no key id: the row's key_id names the key (or every loaded key is tried when it has none).
        let candidates = recordedKeyID.map { id in keys.filter { $0.id == id } } ?? keys
        guard !candidates.isEmpty else {
            throw CredentialError("\(binding): sealed with key \(recordedKeyID ?? "?"), which is not loaded (loaded: \(keyIDs.joined(separator: ", ")))")
        }
        for key in candidates {
            guard let box = try? AES.GCM.SealedBox(combined: bytes), let opened = try? AES.GCM.open(box, using: key.symmetric) else { continue }
            if legacyLogged.first("\(binding.merchantID)|\(binding.environment)") {
                logger.notice("legacy v1 sealed credentials opened; re-seal them with flexcharge-outbox merchant rotate-credentials",
                              metadata: ["merchant_id": "\(binding.merchantID)", "environment": "\(binding.environment)",
                                         "key_id": "\(key.id)"])
            }
            return String(decoding: opened, as: UTF8.self)
        }
        throw CredentialError("\(binding): does not open with key \(candidates.map(\.id).joined(separator: ", ")) (legacy v1 value, wrong key or altered)")
    }

    static let magic: [UInt8] = [0x46, 0x43, 0x4F, 0x02]  // "FCO", format 2

    /// How v1 sealed a value (no associated data, no header). Only tests write it now.
    static func sealLegacyV1(_ secret: String, keyBytes: [UInt8]) -> [UInt8] {
        Array(try! AES.GCM.seal(Data(secret.utf8), using: SymmetricKey(data: keyBytes)).combined!)
    }
}

/// Remembers what was logged once.
private final class LegacyLog: Sendable {
    private let seen = Mutex<Set<String>>([])
    func first(_ key: String) -> Bool { seen.withLock { $0.insert(key).inserted } }
}

/// A problem with credentials or the credentials keys. Never carries a secret.
public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
