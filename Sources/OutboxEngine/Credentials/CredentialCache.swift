import FlexChargeAPI
import Foundation
import Synchronization

/// Opens a claimed event's API credentials once per stored version: a change in
/// `merchant_credentials` (new `updated_at`, e.g. a new secret or a re-seal under a new key) is
/// picked up by the next claim, without decrypting on every event. A worker whose ring holds the
/// old and the new key opens rows on either side of a rotation.
///
/// One per worker: its deliveries, breaker probes and outcome lookups all open API credentials here.
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
        try credentials(event.credentials, merchantID: event.merchantID, environment: event.environment)
    }

    /// The API credentials of a row read with an event (nil: the merchant has none in that environment).
    func credentials(_ sealed: SealedCredentials?, merchantID: String, environment: String) throws(CredentialError)
        -> MerchantCredentials
    {
        guard let sealed else {
            throw CredentialError("merchant \(merchantID) has no \(environment) credentials (flexcharge-outbox merchant credentials)")
        }
        return try credentials(for: sealed)
    }

    func credentials(for sealed: SealedCredentials) throws(CredentialError) -> MerchantCredentials {
        let key = Key(merchantID: sealed.merchantID, environment: sealed.environment)
        if let cached = opened.withLock({ $0[key] }), cached.version == sealed.version { return cached.credentials }
        let credentials = try sealer.apiCredentials(sealed)
        opened.withLock { $0[key] = (sealed.version, credentials) }
        return credentials
    }
}
