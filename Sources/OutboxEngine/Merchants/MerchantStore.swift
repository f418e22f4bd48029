import Foundation
import LibPQ

/// Reads and changes merchant settings. Every change and its audit row are written in one
/// transaction: the audit trail cannot miss a change.
public struct MerchantStore: Sendable {
    public let session: PGSession
    public let actor: String

    public init(session: PGSession, actor: String) {
        self.session = session
        self.actor = actor
    }

    /// Enrols a merchant. Fails when it exists already.
    public func add(_ merchantID: String, name: String?, switches: [Channel: ChannelSwitch]) async throws {
        let actor = self.actor
        try await session.withTransaction { tx in
            let exists = try tx.query("SELECT 1 FROM flexcharge.merchants WHERE merchant_id = $1", [merchantID]).rows.count > 0
            guard !exists else { throw MerchantError("merchant \(merchantID) exists already; use merchant set") }
            try tx.execute(
                "INSERT INTO flexcharge.merchants (merchant_id, name, cit_website, cit_call_center, mit) VALUES ($1, $2, $3, $4, $5)",
                [merchantID, name, (switches[.citWebsite] ?? .off).rawValue, (switches[.citCallCenter] ?? .off).rawValue,
                 (switches[.mit] ?? .off).rawValue])
            try Self.audit(tx, actor: actor, merchantID, action: "add", field: "merchant", old: nil, new: name ?? merchantID)
            for channel in Channel.allCases {
                try Self.audit(tx, actor: actor, merchantID, action: "add", field: channel.rawValue, old: nil,
                               new: (switches[channel] ?? .off).rawValue)
            }
        }
    }

    /// Changes switches (and the name, and the call-center marker) of a merchant, or of one of its
    /// sites when `site` is given (`nil` in `switches` for a site means "inherit the merchant's"; the
    /// call-center marker is the merchant's only).
    /// `rateLimit`: `nil` leaves the rate limit as it is; `.some(nil)` removes it; `.some(n)` limits
    /// the merchant's calls to n a second per environment (migrations/0020, ``MerchantRateLimit``).
    public func set(
        _ merchantID: String, site: String?, name: String?, switches: [Channel: ChannelSwitch?],
        callCenter: CallCenterMarkerChange = .init(), rateLimit: MerchantRateLimit?? = nil
    ) async throws {
        if site != nil && !callCenter.isEmpty {
            throw MerchantError("the call-center marker is set per merchant, not per site: leave out --site")
        }
        if site != nil && rateLimit != nil {
            throw MerchantError("the rate limit is set per merchant, not per site: leave out --site")
        }
        let actor = self.actor
        do {
            try await session.withTransaction { tx in
                try Self.set(tx, actor: actor, merchantID, site: site, name: name, switches: switches, callCenter: callCenter)
                if let rateLimit { try Self.setRateLimit(tx, actor: actor, merchantID, rateLimit) }
            }
        } catch let error as PGError where error.constraint == CallCenterMarker.orderSourceConstraint {
            throw MerchantError("the call-center order source must be \(CallCenterMarker.orderSourceRule)")
        }
    }

    private static func set(
        _ tx: isolated PGSession, actor: String, _ merchantID: String, site: String?, name: String?,
        switches: [Channel: ChannelSwitch?], callCenter: CallCenterMarkerChange
    ) throws {
        guard let current = try tx.query("SELECT * FROM flexcharge.merchants WHERE merchant_id = $1 FOR UPDATE", [merchantID]).first else {
            throw MerchantError("unknown merchant \(merchantID); add it with merchant add")
        }
        if let site {
            try tx.execute(
                "INSERT INTO flexcharge.merchant_sites (merchant_id, site) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [merchantID, site])
            let row = try tx.query(
                "SELECT * FROM flexcharge.merchant_sites WHERE merchant_id = $1 AND site = $2 FOR UPDATE", [merchantID, site]).first!
            for (channel, value) in switches {
                let old: String? = try row.decode(channel.rawValue)
                guard old != value?.rawValue else { continue }
                // Column names come from the Channel enum, never from input.
                try tx.execute(
                    "UPDATE flexcharge.merchant_sites SET \(channel.rawValue) = $3, updated_at = now() WHERE merchant_id = $1 AND site = $2",
                    [merchantID, site, value?.rawValue])
                try Self.audit(tx, actor: actor, merchantID, action: "site \(site)", field: channel.rawValue,
                               old: old ?? "inherit", new: value?.rawValue ?? "inherit")
            }
            return
        }
        if let name {
            let old: String? = try current.decode("name")
            try tx.execute("UPDATE flexcharge.merchants SET name = $2, updated_at = now() WHERE merchant_id = $1", [merchantID, name])
            try Self.audit(tx, actor: actor, merchantID, action: "set", field: "name", old: old, new: name)
        }
        for (channel, value) in switches {
            guard let value else { continue }
            let old: String = try current.decode(channel.rawValue)
            guard old != value.rawValue else { continue }
            try tx.execute(
                "UPDATE flexcharge.merchants SET \(channel.rawValue) = $2, updated_at = now() WHERE merchant_id = $1",
                [merchantID, value.rawValue])
            try Self.audit(tx, actor: actor, merchantID, action: "set", field: channel.rawValue, old: old, new: value.rawValue)
        }
        if let orderSource = callCenter.orderSource {
            let old: String? = try current.decode("call_center_order_source")
            if old != orderSource {
                try tx.execute(
                    "UPDATE flexcharge.merchants SET call_center_order_source = $2, updated_at = now() WHERE merchant_id = $1",
                    [merchantID, orderSource])
                try Self.audit(tx, actor: actor, merchantID, action: "set", field: "call_center_order_source",
                               old: old ?? "none", new: orderSource ?? "none")
            }
        }
        if let cardNotPresent = callCenter.cardNotPresent {
            let old: Bool = try current.decode("call_center_card_not_present")
            if old != cardNotPresent {
                try tx.execute(
                    "UPDATE flexcharge.merchants SET call_center_card_not_present = $2, updated_at = now() WHERE merchant_id = $1",
                    [merchantID, cardNotPresent])
                try Self.audit(tx, actor: actor, merchantID, action: "set", field: "call_center_card_not_present",
                               old: String(old), new: String(cardNotPresent))
            }
        }
    }

    /// Changes the rate limit (audited as field `rate_limit`, values like `20/s` or `none`).
    private static func setRateLimit(_ tx: isolated PGSession, actor: String, _ merchantID: String, _ limit: MerchantRateLimit?) throws {
        let row = try tx.query("SELECT rate_limit_per_second FROM flexcharge.merchants WHERE merchant_id = $1 FOR UPDATE", [merchantID]).first
        guard let row else { throw MerchantError("unknown merchant \(merchantID); add it with merchant add") }
        let old = (try row.decode("rate_limit_per_second", as: Int?.self)).map(MerchantRateLimit.init(perSecond:))
        guard old != limit else { return }
        try tx.execute("UPDATE flexcharge.merchants SET rate_limit_per_second = $2, updated_at = now() WHERE merchant_id = $1",
                       [merchantID, limit?.perSecond])
        try Self.audit(tx, actor: actor, merchantID, action: "set", field: "rate_limit",
                       old: old?.description ?? "none", new: limit?.description ?? "none")
    }

    /// Stores one environment's credentials, sealed. The audit says "set" or "changed", never a value.
    public func setCredentials(
        _ merchantID: String, environment: String, mid: String, secrets: MerchantSecrets, sealer: CredentialSealer
    ) async throws {
        let actor = self.actor
        func seal(_ value: String?, _ field: CredentialField) throws(CredentialError) -> PGBytes? {
            try value.map { (value) throws(CredentialError) in
                PGBytes(try sealer.seal(value, for: CredentialBinding(merchantID: merchantID, environment: environment, field: field)))
            }
        }
        let sealed = (
            appKey: try seal(secrets.appKey, .appKey), appSecret: try seal(secrets.appSecret, .appSecret),
            tokenization: try seal(secrets.tokenizationKey, .tokenizationKey), webhook: try seal(secrets.webhookKey, .webhookKey))
        let keyID = sealer.keyID
        try await session.withTransaction { tx in
            guard try tx.query("SELECT 1 FROM flexcharge.merchants WHERE merchant_id = $1", [merchantID]).rows.count > 0 else {
                throw MerchantError("unknown merchant \(merchantID); add it with merchant add")
            }
            let previous = try tx.query(
                "SELECT mid FROM flexcharge.merchant_credentials WHERE merchant_id = $1 AND environment = $2", [merchantID, environment]).first
            try tx.execute(
                """
                INSERT INTO flexcharge.merchant_credentials
                       (merchant_id, environment, mid, app_key_sealed, app_secret_sealed, tokenization_key_sealed,
                        webhook_key_sealed, key_id, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                ON CONFLICT (merchant_id, environment) DO UPDATE
                   SET mid = EXCLUDED.mid, app_key_sealed = EXCLUDED.app_key_sealed,
                       app_secret_sealed = EXCLUDED.app_secret_sealed,
                       tokenization_key_sealed = EXCLUDED.tokenization_key_sealed,
                       webhook_key_sealed = EXCLUDED.webhook_key_sealed, key_id = EXCLUDED.key_id, updated_at = now()
                """,
                [merchantID, environment, mid, sealed.appKey, sealed.appSecret, sealed.tokenization, sealed.webhook, keyID])
            let oldMID: String? = try previous?.decode("mid")
            try Self.audit(tx, actor: actor, merchantID, action: "credentials \(environment)", field: "mid", old: oldMID, new: mid)
            try Self.audit(tx, actor: actor, merchantID, action: "credentials \(environment)", field: "secrets",
                           old: previous == nil ? nil : "set", new: previous == nil ? "set" : "changed")
        }
    }

    /// What ``rotateCredentials(sealer:dryRun:)`` did to one row.
    public struct Rotation: Sendable, Codable, Equatable {
        public let merchantID: String
        public let environment: String
        /// The row's `key_id` before.
        public let fromKeyID: String
        /// `resealed`, `current` (already v2 under the primary key) or `failed: <reason>`.
        public let result: String
    }

    /// Re-seals every stored secret under the sealer's primary key, in format v2 (bound to its
    /// merchant, environment and field), one row per transaction (`FOR UPDATE`, so a concurrent
    /// `merchant credentials` waits or goes first), each with an audit row that names the key ids
    /// and never a value. Rows already current are left alone. Workers keep running: a worker
    /// holding both keys opens every row before, during and after (each value names its key).
    /// A row that cannot be opened is reported and left as it is; the others go on.
    public func rotateCredentials(sealer: CredentialSealer, dryRun: Bool = false) async throws -> [Rotation] {
        let actor = self.actor
        let rows = try await session.query(
            "SELECT merchant_id, environment FROM flexcharge.merchant_credentials ORDER BY merchant_id, environment").rows
        var done: [Rotation] = []
        for row in rows {
            let merchantID: String = try row.decode("merchant_id")
            let environment: String = try row.decode("environment")
            let rotation = try await session.withTransaction { tx -> Rotation? in
                guard let current = try tx.query(
                    """
                    SELECT merchant_id, environment, mid, key_id, updated_at AS credentials_updated_at,
                           app_key_sealed, app_secret_sealed, tokenization_key_sealed, webhook_key_sealed
                      FROM flexcharge.merchant_credentials WHERE merchant_id = $1 AND environment = $2 FOR UPDATE
                    """, [merchantID, environment]).first, let sealed = try SealedCredentials(row: current)
                else { return nil }
                let fromKeyID = sealed.keyID ?? "?"
                let secrets = [sealed.appKey, sealed.appSecret, sealed.tokenizationKey, sealed.webhookKey]
                if secrets.allSatisfy(sealer.isCurrent) && sealed.keyID == sealer.keyID {
                    return Rotation(merchantID: merchantID, environment: environment, fromKeyID: fromKeyID, result: "current")
                }
                var resealed: [PGBytes?] = []
                do throws(CredentialError) {
                    for secret in secrets {
                        guard case .sealed = secret.content else { resealed.append(nil); continue }
                        resealed.append(PGBytes(try sealer.seal(try sealer.open(secret), for: secret.binding)))
                    }
                } catch {
                    return Rotation(merchantID: merchantID, environment: environment, fromKeyID: fromKeyID, result: "failed: \(error.description)")
                }
                if dryRun {
                    return Rotation(merchantID: merchantID, environment: environment, fromKeyID: fromKeyID, result: "would be resealed")
                }
                try tx.execute(
                    """
                    UPDATE flexcharge.merchant_credentials
                       SET app_key_sealed = $3, app_secret_sealed = $4, tokenization_key_sealed = $5, webhook_key_sealed = $6,
                           key_id = $7, updated_at = now()
                     WHERE merchant_id = $1 AND environment = $2
                    """, [merchantID, environment, resealed[0], resealed[1], resealed[2], resealed[3], sealer.keyID])
                try Self.audit(tx, actor: actor, merchantID, action: "credentials \(environment)", field: "sealing key",
                               old: fromKeyID, new: "\(sealer.keyID) (v2)")
                return Rotation(merchantID: merchantID, environment: environment, fromKeyID: fromKeyID, result: "resealed")
            }
            if let rotation { done.append(rotation) }
        }
        return done
    }

    /// One merchant's settings, or nil when unknown.
    public func settings(_ merchantID: String) async throws -> MerchantSettings? {
        guard let row = try await session.query("SELECT * FROM flexcharge.merchants WHERE merchant_id = $1", [merchantID]).first else {
            return nil
        }
        var settings = MerchantSettings(merchantID: merchantID, name: try row.decode("name"),
                                        callCenter: try Self.callCenterMarker(row))
        settings.rateLimit = (try row.decode("rate_limit_per_second", as: Int?.self)).map(MerchantRateLimit.init(perSecond:))
        for channel in Channel.allCases {
            settings.switches[channel] = ChannelSwitch(rawValue: try row.decode(channel.rawValue))
        }
        for site in try await session.query(
            "SELECT * FROM flexcharge.merchant_sites WHERE merchant_id = $1 ORDER BY site", [merchantID]).rows
        {
            var overrides: [Channel: ChannelSwitch] = [:]
            for channel in Channel.allCases {
                if let value: String = try site.decode(channel.rawValue) { overrides[channel] = ChannelSwitch(rawValue: value) }
            }
            settings.sites[try site.decode("site")] = overrides
        }
        for credential in try await session.query(
            "SELECT environment, mid FROM flexcharge.merchant_credentials WHERE merchant_id = $1", [merchantID]).rows
        {
            settings.credentials[try credential.decode("environment")] = try credential.decode("mid")
        }
        return settings
    }

    /// Every merchant id with its switches, ordered by id.
    public func list() async throws -> [MerchantSettings] {
        try await session.query("SELECT * FROM flexcharge.merchants ORDER BY merchant_id").rows.map { row in
            var settings = MerchantSettings(merchantID: try row.decode("merchant_id"), name: try row.decode("name"),
                                            callCenter: try Self.callCenterMarker(row))
            settings.rateLimit = (try row.decode("rate_limit_per_second", as: Int?.self)).map(MerchantRateLimit.init(perSecond:))
            for channel in Channel.allCases {
                settings.switches[channel] = ChannelSwitch(rawValue: try row.decode(channel.rawValue))
            }
            return settings
        }
    }

    /// The audit trail of one merchant, oldest first.
    public func history(_ merchantID: String) async throws -> [AuditEntry] {
        try await session.query(
            "SELECT at, actor, action, field, old_value, new_value FROM flexcharge.merchant_audit WHERE merchant_id = $1 ORDER BY id",
            [merchantID]
        ).rows.map {
            AuditEntry(at: try $0.decode("at"), actor: try $0.decode("actor"), action: try $0.decode("action"),
                       field: try $0.decode("field"), old: try $0.decode("old_value"), new: try $0.decode("new_value"))
        }
    }

    private static func callCenterMarker(_ row: PGRow) throws -> CallCenterMarker {
        CallCenterMarker(orderSource: try row.decode("call_center_order_source"),
                         cardNotPresent: try row.decode("call_center_card_not_present"))
    }

    private static func audit(
        _ tx: isolated PGSession, actor: String, _ merchantID: String, action: String, field: String, old: String?, new: String?
    ) throws {
        try tx.execute(
            "INSERT INTO flexcharge.merchant_audit (actor, merchant_id, action, field, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6)",
            [actor, merchantID, action, field, old, new])
    }
}

/// One audited change.
public struct AuditEntry: Sendable, Codable {
    public let at: Date
    public let actor: String
    public let action: String
    public let field: String
    public let old: String?
    public let new: String?
}

/// A merchant operation that cannot be done (unknown merchant, duplicate).
public struct MerchantError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
