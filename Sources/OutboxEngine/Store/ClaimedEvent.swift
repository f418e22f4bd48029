import Foundation
import LibPQ

/// An event a worker has leased: what to send, to whom, with which key.
struct ClaimedEvent: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case transmit, evaluate, cancel, refund, capture
        case externalCancel = "external_cancel"

        /// Kinds whose call can move money or end an order at FlexCharge: after a call that may have
        /// reached FlexCharge they are looked up before anything is sent again. A transmit is a data
        /// feed without an idempotency key: it is simply sent again.
        var isLookedUpAfterAmbiguity: Bool { self != .transmit }

        /// Kinds whose FlexCharge call carries the event's idempotency key (so a resend within 24 h
        /// replays the first answer). FlexCharge's /refund and /transmit take none.
        var carriesIdempotencyKey: Bool {
            switch self {
            case .evaluate, .cancel, .externalCancel, .capture: true
            case .refund, .transmit: false
            }
        }
    }

    enum NextAction: String, Sendable {
        /// Send the request (again, with the same idempotency key).
        case send
        /// Find out at FlexCharge what happened to an earlier attempt before sending anything.
        case lookup
    }

    let id: Int64
    let kind: Kind
    let merchantID: String
    let orderID: String
    let channel: String
    let origin: String?
    let site: String?
    let idempotencyKey: String
    /// This claim's attempt number (1 for the first).
    let attempt: Int
    let createdAt: Date
    /// When the event was first claimed: FlexCharge's idempotency window for its key starts no later.
    let firstClaimedAt: Date
    let nextAction: NextAction
    /// `sandbox` or `production`.
    let environment: String
    /// FlexCharge's order id: an evaluate's answer; for a cancel, refund or capture its order's
    /// evaluate's, else the payload's `orderSessionKey`.
    let orderSessionKey: String?
    let amountCents: Int64?
    /// A capture's currency (its own, else its order's evaluate's).
    let currency: String?
    /// For a refund being looked up: the cents this outbox has recorded as refunded on the same
    /// FlexCharge order by its other refund events.
    let refundedBeforeCents: Int64?
    /// The request body, sent unchanged: built for every kind by `flexcharge.request_body_text()`
    /// (migrations/0030_request_body_text.sql; the rules in 0015_what_is_sent.sql), the one home of
    /// request bodies.
    let requestBody: String
    /// The merchant's sealed credentials for `environment`, when configured.
    let credentials: SealedCredentials?
    /// The lane it was claimed in: its own lane, or a lower one when a later event of its order
    /// waits for it (the insert trigger raises them, migrations/0022_insert_cost.sql).
    let claimLane: Lane
    /// The merchant's rate limit toward FlexCharge when it was claimed (migrations/0020); `nil`: none,
    /// so the rate limiter lets it through without a statement.
    let rateLimitPerSecond: Int?

    /// The lane of its kind and channel, for metrics and logs.
    var lane: Lane { Lane(kind: kind, channel: channel) }

    init(row: PGRow) throws {
        id = try row.decode("id")
        guard let kind = Kind(rawValue: try row.decode("kind")) else { throw PGError(.decoding, "unknown event kind") }
        self.kind = kind
        merchantID = try row.decode("merchant_id")
        orderID = try row.decode("order_id")
        channel = try row.decode("channel")
        origin = try row.decode("origin")
        site = try row.decode("site")
        idempotencyKey = try row.decode("idempotency_key")
        attempt = try row.decode("attempts")
        createdAt = try row.decode("created_at")
        firstClaimedAt = try row.decode("first_claimed_at")
        nextAction = NextAction(rawValue: try row.decode("next_action")) ?? .send
        environment = try row.decode("environment")
        // A lane this build does not know (a newer migration's) queues as its kind's own lane:
        // refusing the row would leave a claimed event unprocessed until its lease expired.
        claimLane = Lane(rawValue: Int(try row.decode("claim_lane", as: Int16.self))) ?? Lane(kind: kind, channel: channel)
        orderSessionKey = try row.decode("order_session_key")
        amountCents = try row.decode("amount_cents")
        currency = try row.decode("currency")
        refundedBeforeCents = try row.decode("refunded_before_cents")
        requestBody = try row.decode("request_body")
        credentials = try SealedCredentials(row: row)
        rateLimitPerSecond = try row.decode("rate_limit_per_second", as: Int32?.self).map(Int.init)
    }
}
