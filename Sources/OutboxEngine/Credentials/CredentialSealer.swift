import Crypto
import Foundation

/// Seals and opens merchant secrets with AES-256-GCM, using a key that never enters the
/// database, so a dump of `flexcharge.merchant_credentials` reveals nothing usable.
///
/// The key is 32 bytes, given base64-encoded in `FLEXCHARGE_CREDENTIALS_KEY` or in the file named
/// by `FLEXCHARGE_CREDENTIALS_KEY_FILE` (e.g. a mounted Kubernetes Secret). Its `keyID` (the first
/// 8 hex digits of SHA-256 of the key) is stored next to each sealed value, so a rotated key is
/// recognised instead of producing garbage.
public struct CredentialSealer: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// Identifies the key without revealing it.
    public let keyID: String

    public init(keyBytes: [UInt8]) throws(CredentialError) {
        guard keyBytes.count == 32 else { throw CredentialError("the credentials key must be 32 bytes (base64 of 32 random bytes)") }
        self.keyBytes = keyBytes
        self.keyID = SHA256.hash(data: keyBytes).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads the key from `FLEXCHARGE_CREDENTIALS_KEY` or `FLEXCHARGE_CREDENTIALS_KEY_FILE`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(CredentialError) -> CredentialSealer
    {
        var encoded = environment["FLEXCHARGE_CREDENTIALS_KEY"]
        if encoded == nil, let path = environment["FLEXCHARGE_CREDENTIALS_KEY_FILE"] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CredentialError("cannot read FLEXCHARGE_CREDENTIALS_KEY_FILE \(path)")
            }
            encoded = String(decoding: data, as: UTF8.self)
        }
        guard let encoded else {
            throw CredentialError("set FLEXCHARGE_CREDENTIALS_KEY (base64 of 32 random bytes: openssl rand -base64 32) or FLEXCHARGE_CREDENTIALS_KEY_FILE")
        }
        guard let bytes = Data(base64Encoded: encoded.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CredentialError("FLEXCHARGE_CREDENTIALS_KEY is not valid base64")
        }
        return try CredentialSealer(keyBytes: Array(bytes))
    }

    /// Nonce, ciphertext and tag, in one blob.
    public func seal(_ secret: String) throws(CredentialError) -> [UInt8] {
        do {
            return Array(try AES.GCM.seal(Data(secret.utf8), using: key).combined!)
        } catch {
            throw CredentialError("could not seal a secret")
        }
    }

    public func open(_ sealed: [UInt8]) throws(CredentialError) -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw CredentialError("a stored secret cannot be opened with this credentials key (was the key rotated?)")
        }
    }
}

/// A problem with credentials or the credentials key. Never carries a secret.
public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
