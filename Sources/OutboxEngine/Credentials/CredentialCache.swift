import FlexChargeAPI
import Foundation
import Synchronization

/// Opens sealed credentials once per stored version: a change in `merchant_credentials`
/// (new `updated_at`) is picked up by the next claim, without decrypting on every event.
final class CredentialCache: Sendable {
    private struct Key: Hashable {
        let merchantID: String
        let environment: String
    }

    private let sealer: CredentialSealer
    /// A lock, not an actor: every call looks its credentials up.
    private let opened = Mutex<[Key: (version: Date, credentials: MerchantCredentials)]>([:])

    init(sealer: CredentialSealer) { self.sealer = sealer }

    func credentials(for event: ClaimedEvent) throws(CredentialError) -> MerchantCredentials {
        guard let sealed = event.credentials else {
            throw CredentialError("merchant \(event.merchantID) has no \(event.environment) credentials (flexcharge-outbox merchant credentials)")
        }
        let key = Key(merchantID: event.merchantID, environment: event.environment)
        if let cached = opened.withLock({ $0[key] }), cached.version == sealed.version { return cached.credentials }
        let credentials = MerchantCredentials(
            mid: sealed.mid,
            appKey: try sealer.open(sealed.appKey),
            appSecret: try sealer.open(sealed.appSecret),
            tokenizationKey: try sealed.tokenizationKey.map { (bytes) throws(CredentialError) in try sealer.open(bytes) })
        opened.withLock { $0[key] = (sealed.version, credentials) }
        return credentials
    }
}
