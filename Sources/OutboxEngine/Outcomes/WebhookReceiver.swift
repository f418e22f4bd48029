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
            logger.error("webhook: could not read keys", metadata: ["merchant_id": "\(merchantID)", "error": "\(error)"])
            return Reply(status: 500, message: "temporarily unavailable")
        }
        guard !keys.isEmpty else { return refuse("unknown merchant or no webhook key", merchant: merchantID) }
        guard let environment = keys.first(where: {
            WebhookSignature.verify(body: body, host: host, date: date, nonce: nonce, authorization: authorization,
                                    subscriberKey: $0.key)
        })?.environment else {
            return refuse("signature does not verify", merchant: merchantID)
        }
        guard let sent = Self.rfc1123(date), abs(sent.timeIntervalSince(now())) <= clockSkew.secondsValue else {
            return refuse("x-fc-date outside the accepted clock skew", merchant: merchantID)
        }
        guard let payload = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let event = payload["Event"] as? String, !event.isEmpty,
              let orderID = payload["OrderId"] as? String, !orderID.isEmpty else {
            return Reply(status: 400, message: "body is not a FlexCharge webhook (Event, OrderId)")
        }
        let delivery = Delivery(
            merchantID: merchantID, environment: environment, nonce: nonce, event: event, orderID: orderID,
            externalOrderID: payload["ExternalOrderId"] as? String, confirmationID: payload["ConfirmationId"] as? String,
            timestamp: payload["TimeStamp"] as? String ?? "", isTestMode: payload["IsTestMode"] as? Bool,
            isResent: payload["IsResent"] as? Bool ?? false, body: String(decoding: body, as: UTF8.self),
            skewSeconds: clockSkew.secondsValue)
        do {
            let result = try await session.withTransaction { tx in try Self.record(delivery, tx: tx) }
            var metadata: Logger.Metadata = [
                "merchant_id": "\(merchantID)", "event": "\(event)", "order_id": "\(orderID)", "result": "\(result)",
            ]
            if delivery.isResent { metadata["resent"] = "true" }
            logger.info("webhook", metadata: metadata)
            switch result {
            case .replayed: return refuse("nonce already used (replay)", merchant: merchantID)
            case .duplicate: return Reply(status: 200, message: "already recorded")
            case .recorded: return Reply(status: 200, message: "recorded")
            }
        } catch {
            logger.error("webhook: could not record", metadata: ["merchant_id": "\(merchantID)", "error": "\(error)"])
            return Reply(status: 500, message: "temporarily unavailable")
        }
    }

    private func refuse(_ reason: String, merchant: String?) -> Reply {
        logger.warning("webhook refused", metadata: ["merchant_id": "\(merchant ?? "-")", "reason": "\(reason)"])
        return Reply(status: 401, message: "unauthorized")
    }

    private func subscriberKeys(_ merchantID: String) async throws -> [(environment: String, key: String)] {
        let rows = try await session.query(
            """
            SELECT environment, webhook_key_sealed FROM flexcharge.merchant_credentials
             WHERE merchant_id = $1 AND webhook_key_sealed IS NOT NULL ORDER BY environment DESC
            """, [merchantID]).rows
        return try rows.compactMap { row in
            let sealed = try row.decode("webhook_key_sealed", as: PGBytes.self).bytes
            guard let key = try? sealer.open(sealed) else { return nil }
            return (try row.decode("environment"), key)
        }
    }

    struct Delivery: Sendable {
        var merchantID, environment, nonce, event, orderID: String
        var externalOrderID, confirmationID: String?
        var timestamp: String
        var isTestMode: Bool?
        var isResent: Bool
        var body: String
        var skewSeconds: Double
    }

    enum Result: String, Sendable {
        case recorded, duplicate, replayed
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
        // The evaluate this order came from: by FlexCharge's order id, else by the gateway's order id.
        let eventID = try tx.query(
            """
            SELECT id FROM flexcharge.outbox
             WHERE merchant_id = $1 AND kind = 'evaluate' AND (order_session_key = $2 OR order_id = $3)
             ORDER BY (order_session_key IS NOT DISTINCT FROM $2) DESC, id DESC
             LIMIT 1
            """, [d.merchantID, d.orderID, d.externalOrderID]).first?.decode("id", as: Int64.self)
        let inserted = try tx.query(
            """
            INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id,
                                                   external_order_id, confirmation_id, fc_timestamp, is_test_mode, payload)
            VALUES ('webhook', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
            ON CONFLICT (merchant_id, fc_order_id, fc_event, fc_timestamp) WHERE source = 'webhook'
            DO UPDATE SET deliveries = flexcharge.outcome_events.deliveries + 1, last_delivery_at = now()
            RETURNING id, (xmax = 0) AS inserted
            """,
            [d.merchantID, d.environment, eventID, d.event, d.orderID, d.externalOrderID, d.confirmationID, d.timestamp,
             d.isTestMode, PGJSON(text: d.body)]).first!
        guard try inserted.decode("inserted", as: Bool.self) else { return .duplicate }
        if let eventID, let change = OutcomeRules.change(forWebhook: d.event) {
            let changed = try tx.execute(
                """
                UPDATE flexcharge.outbox
                   SET decision = $2, state = CASE WHEN $3::boolean THEN 'succeeded' ELSE state END,
                       completed_at = now(), last_error_class = NULL, last_error = NULL, updated_at = now()
                 WHERE id = $1 AND state = 'awaiting_outcome'
                """, [eventID, change.decision, change.isFinal])
            if changed == 1 {
                try tx.execute("UPDATE flexcharge.outcome_events SET decision = $2 WHERE id = $1",
                               [try inserted.decode("id", as: Int64.self), change.decision])
            }
        }
        return .recorded
    }

    /// `Mon, 20 Mar 2023 17:16:40 GMT`.
    static func rfc1123(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)
    }
}
