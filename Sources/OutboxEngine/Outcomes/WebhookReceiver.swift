import FlexChargeAPI
import Foundation
import LibPQ
import Logging

/// Receives FlexCharge webhooks (contract §6.7) for one merchant, named in the URL
/// (`POST /webhooks/flexcharge?merchant=<merchant_id>`), and records them against the right event.
///
/// A delivery is accepted only when its `x-fc-*` HMAC-SHA512 signature verifies (constant time)
/// with one of the merchant's webhook subscriber keys (sealed in `merchant_credentials`), its
/// `x-fc-date` is within `clockSkew` of our clock, and its `x-fc-nonce` was never seen before.
/// Anything else is 401 and nothing is written. The raw body is read whatever its Content-Type.
/// Redeliveries (`IsResent`) of an event already recorded are answered 200 and counted, never
/// recorded twice.
///
/// A delivery is bound to its environment: the key that verifies it names the environment, and
/// `IsTestMode` must agree (`true` for sandbox, `false` for production; a delivery where they
/// disagree, or that lacks `IsTestMode`, is refused with 403, recorded with its reason in
/// `outcome_events.refused_reason` and settles nothing). It then settles only an evaluate of that
/// environment: the one whose `order_session_key` is its `OrderId`, else (only for an evaluate
/// that has no `order_session_key`) the latest whose `order_id` is its `ExternalOrderId`.
public struct WebhookReceiver: Sendable {
    /// The HTTP answer.
    public struct Reply: Sendable, Equatable {
        public var status: Int
        public var message: String
    }

    let session: PGSession
    let sealer: CredentialSealer
    let clockSkew: Duration
    let now: @Sendable () -> Date
    let logger: Logger

    public init(session: PGSession, sealer: CredentialSealer, clockSkew: Duration = .seconds(300),
                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "flexcharge.webhooks")) {
        self.session = session
        self.sealer = sealer
        self.clockSkew = clockSkew
        self.now = now
        self.logger = logger
    }

    /// Handles one delivery. `headers` are keyed by lower-case name; `host` is the `Host` the
    /// sender addressed (it is part of the signed string).
    public func receive(merchantID: String?, host: String?, headers: [String: String], body: [UInt8]) async -> Reply {
        guard let merchantID, !merchantID.isEmpty, merchantID.count <= 128 else {
            return refuse("no merchant in the webhook URL (use ?merchant=<merchant_id>)", merchant: nil)
        }
        guard let host, let authorization = headers["x-fc-authorization"], let date = headers["x-fc-date"],
              let nonce = headers["x-fc-nonce"], !nonce.isEmpty, nonce.count <= 128 else {
            return refuse("signature headers missing", merchant: merchantID)
        }
        let keys: [(environment: String, key: String)]
        do {
            keys = try await subscriberKeys(merchantID)
        } catch {
            logger.error("webhook: could not read keys", metadata: ["merchant_id": "\(SafeText.forLog(merchantID))", "error": "\(error)"])
            return Reply(status: 500, message: "temporarily unavailable")
        }
        guard !keys.isEmpty else { return refuse("unknown merchant or no webhook key", merchant: merchantID) }
        // Every environment whose key verifies it (a merchant may use one key in both).
        let verified = keys.filter {
            WebhookSignature.verify(body: body, host: host, date: date, nonce: nonce, authorization: authorization,
                                    subscriberKey: $0.key)
        }.map(\.environment)
        guard !verified.isEmpty else {
            return refuse("signature does not verify", merchant: merchantID)
        }
        guard let sent = HTTPDate.parse(date), abs(sent.timeIntervalSince(now())) <= clockSkew.seconds else {
            return refuse("x-fc-date outside the accepted clock skew", merchant: merchantID)
        }
        guard let payload = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let event = payload["Event"] as? String, !event.isEmpty,
              let orderID = payload["OrderId"] as? String, !orderID.isEmpty else {
            return Reply(status: 400, message: "body is not a FlexCharge webhook (Event, OrderId)")
        }
        let isTestMode = payload["IsTestMode"] as? Bool
        let (environment, refusal) = Self.environment(verifiedWith: verified, isTestMode: isTestMode)
        let delivery = Delivery(
            merchantID: merchantID, environment: environment, refusal: refusal, nonce: nonce, event: event, orderID: orderID,
            externalOrderID: payload["ExternalOrderId"] as? String, confirmationID: payload["ConfirmationId"] as? String,
            timestamp: payload["TimeStamp"] as? String ?? "", isTestMode: isTestMode,
            isResent: payload["IsResent"] as? Bool ?? false, body: String(decoding: body, as: UTF8.self),
            skewSeconds: clockSkew.seconds)
        do {
            let result = try await session.withTransaction { tx in try Self.record(delivery, tx: tx) }
            var metadata: Logger.Metadata = [
                "merchant_id": "\(SafeText.forLog(merchantID))", "event": "\(SafeText.forLog(event))",
                "order_id": "\(SafeText.forLog(orderID))", "result": "\(result)",
            ]
            if delivery.isResent { metadata["resent"] = "true" }
            metadata["environment"] = "\(environment)"
            if let refusal {
                metadata["reason"] = "\(refusal)"
                logger.warning("webhook refused: environment mismatch", metadata: metadata)
            } else {
                logger.info("webhook", metadata: metadata)
            }
            switch result {
            case .replayed: return refuse("nonce already used (replay)", merchant: merchantID)
            case .refused: return Reply(status: 403, message: "environment mismatch")
            case .duplicate: return Reply(status: 200, message: "already recorded")
            case .recorded: return Reply(status: 200, message: "recorded")
            }
        } catch {
            logger.error("webhook: could not record", metadata: ["merchant_id": "\(SafeText.forLog(merchantID))", "error": "\(error)"])
            return Reply(status: 500, message: "temporarily unavailable")
        }
    }

    private func refuse(_ reason: String, merchant: String?) -> Reply {
        logger.warning("webhook refused", metadata: ["merchant_id": "\(merchant.map { SafeText.forLog($0) } ?? "-")", "reason": "\(reason)"])
        return Reply(status: 401, message: "unauthorized")
    }

    /// The environment a verified delivery belongs to, or why it is refused: `IsTestMode` names it
    /// (`true` sandbox, `false` production) and its key must be one that verified the signature.
    static func environment(verifiedWith verified: [String], isTestMode: Bool?) -> (environment: String, refusal: String?) {
        guard let isTestMode else {
            return (verified[0], "IsTestMode missing; signed with the \(verified.joined(separator: "/")) key")
        }
        let claimed = isTestMode ? "sandbox" : "production"
        guard verified.contains(claimed) else {
            return (verified[0], "signed with the \(verified.joined(separator: "/")) key but IsTestMode=\(isTestMode) (\(claimed))")
        }
        return (claimed, nil)
    }

    /// The merchant's webhook keys by environment. A key that does not open is logged (the error
    /// names merchant, environment and field) and skipped: the other environment still works.
    private func subscriberKeys(_ merchantID: String) async throws -> [(environment: String, key: String)] {
        try await SealedCredentials.load(.webhook, merchantID: merchantID, on: session).compactMap { sealed -> (environment: String, key: String)? in
            guard case .sealed = sealed.webhookKey.content else { return nil }
            do {
                return (sealed.environment, try sealer.webhookKey(sealed))
            } catch {
                logger.error("webhook: a webhook key does not open", metadata: ["error": "\(error)"])
                return nil
            }
        }
    }

    struct Delivery: Sendable {
        var merchantID, environment: String
        /// Why it must not settle anything (environment mismatch), when it must not.
        var refusal: String?
        var nonce, event, orderID: String
        var externalOrderID, confirmationID: String?
        var timestamp: String
        var isTestMode: Bool?
        var isResent: Bool
        var body: String
        var skewSeconds: Double
    }

    enum Result: String, Sendable {
        case recorded, duplicate, replayed, refused
    }

    /// Nonce, outcome row and the event's change, in one transaction.
    private static func record(_ d: Delivery, tx: isolated PGSession) throws -> Result {
        // Forget nonces older than any date we would still accept (a few at a time).
        try tx.execute(
            """
            DELETE FROM flexcharge.webhook_nonces WHERE ctid IN (
                SELECT ctid FROM flexcharge.webhook_nonces
                 WHERE seen_at < now() - make_interval(secs => $1::float8) LIMIT 100)
            """, [d.skewSeconds * 2 + 60])
        let fresh = try tx.execute(
            "INSERT INTO flexcharge.webhook_nonces (merchant_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [d.merchantID, d.nonce])
        guard fresh == 1 else { return .replayed }
        if let refusal = d.refusal {
            // Recorded for ops (every delivery, no dedup), against no event.
            try tx.execute(
                """
                INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id,
                                                       external_order_id, confirmation_id, fc_timestamp, is_test_mode, payload,
                                                       refused_reason)
                VALUES ('webhook', $1, $2, NULL, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
                """,
                [d.merchantID, d.environment, d.event, d.orderID, d.externalOrderID, d.confirmationID, d.timestamp,
                 d.isTestMode, PGJSON(text: d.body), refusal])
            return .refused
        }
        // The evaluate of this environment this order came from: by FlexCharge's order id, else (an
        // evaluate that never got one) by the gateway's order id.
        let evaluate = try tx.query(
            """
            SELECT id, decision FROM flexcharge.outbox
             WHERE merchant_id = $1 AND kind = 'evaluate' AND environment = $4
               AND (order_session_key = $2 OR (order_session_key IS NULL AND order_id = $3))
             ORDER BY (order_session_key IS NOT DISTINCT FROM $2) DESC, id DESC
             LIMIT 1
            """, [d.merchantID, d.orderID, d.externalOrderID, d.environment]).first
        let eventID = try evaluate?.decode("id", as: Int64.self)
        let inserted = try tx.query(
            """
            INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id,
                                                   external_order_id, confirmation_id, fc_timestamp, is_test_mode, payload)
            VALUES ('webhook', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
            ON CONFLICT (merchant_id, environment, fc_order_id, fc_event, fc_timestamp)
                WHERE source = 'webhook' AND refused_reason IS NULL
            DO UPDATE SET deliveries = flexcharge.outcome_events.deliveries + 1, last_delivery_at = now()
            RETURNING id, (xmax = 0) AS inserted
            """,
            [d.merchantID, d.environment, eventID, d.event, d.orderID, d.externalOrderID, d.confirmationID, d.timestamp,
             d.isTestMode, PGJSON(text: d.body)]).first!
        guard try inserted.decode("inserted", as: Bool.self) else { return .duplicate }
        // Refunds, cancellations and chargebacks after approval change no decision: the money
        // reports count them from this row (flexcharge.money_adjustments, migrations/0016).
        let known = try evaluate?.decode("decision", as: String?.self).flatMap { Decision(rawValue: $0) }
        if let eventID, let decision = Decision.settled(byWebhook: d.event, known: known) {
            let changed = try tx.execute(
                """
                UPDATE flexcharge.outbox
                   SET decision = $2, state = $3,
                       completed_at = now(), last_error_class = NULL, last_error = NULL, updated_at = now()
                 WHERE id = $1 AND state = 'awaiting_outcome' AND environment = $4
                """, [eventID, decision.rawValue, decision.eventState, d.environment])
            if changed == 1 {
                try tx.execute("UPDATE flexcharge.outcome_events SET decision = $2 WHERE id = $1",
                               [try inserted.decode("id", as: Int64.self), decision.rawValue])
            }
        }
        return .recorded
    }
}
