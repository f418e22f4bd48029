import Foundation
import LibPQ

/// An event a worker has leased: what to send, to whom, with which key.
///
/// A class (immutable): a claimed event is handed from the claim to the held queues, a call slot,
/// metrics and logs, and a copy of a struct of twenty-odd fields retained and released each of
/// them (about 3.5 k instructions per event, measured with `scripts/callgrind-worker`).
final class ClaimedEvent: Sendable {
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
    /// request bodies. Kept as the bytes libpq received, which go to the socket as they are.
    let requestBody: [UInt8]
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

    /// Where each column of `flexcharge.claim_for_worker()` is in its result: looked up by name once per
    /// claim, not once per row and column (a lookup by name hashes the name; 26 per event cost about a
    /// tenth of the worker's instructions, `scripts/callgrind-worker`). A column missing from the result
    /// fails the whole claim's decoding, as before.
    struct Columns {
        let id, kind, merchantID, orderID, channel, origin, site, idempotencyKey, attempts, createdAt: Int
        let firstClaimedAt, nextAction, environment, claimLane, orderSessionKey, amountCents, currency: Int
        let refundedBeforeCents, requestBody, rateLimitPerSecond: Int
        let credentials: SealedCredentials.Columns

        init(_ result: PGResult) throws(PGError) {
            id = try result.position(of: "id")
            kind = try result.position(of: "kind")
            merchantID = try result.position(of: "merchant_id")
            orderID = try result.position(of: "order_id")
            channel = try result.position(of: "channel")
            origin = try result.position(of: "origin")
            site = try result.position(of: "site")
            idempotencyKey = try result.position(of: "idempotency_key")
            attempts = try result.position(of: "attempts")
            createdAt = try result.position(of: "created_at")
            firstClaimedAt = try result.position(of: "first_claimed_at")
            nextAction = try result.position(of: "next_action")
            environment = try result.position(of: "environment")
            claimLane = try result.position(of: "claim_lane")
            orderSessionKey = try result.position(of: "order_session_key")
            amountCents = try result.position(of: "amount_cents")
            currency = try result.position(of: "currency")
            refundedBeforeCents = try result.position(of: "refunded_before_cents")
            requestBody = try result.position(of: "request_body")
            rateLimitPerSecond = try result.position(of: "rate_limit_per_second")
            credentials = try SealedCredentials.Columns(result)
        }
    }

    /// Decodes one row of a claim; `columns` are the claim result's (``Columns/init(_:)``).
    init(row: PGRow, columns c: Columns) throws {
        id = try row.decode(c.id)
        guard let kind = Kind(rawValue: try row.decode(c.kind)) else { throw PGError(.decoding, "unknown event kind") }
        self.kind = kind
        merchantID = try row.decode(c.merchantID)
        orderID = try row.decode(c.orderID)
        channel = try row.decode(c.channel)
        origin = try row.decode(c.origin)
        site = try row.decode(c.site)
        idempotencyKey = try row.decode(c.idempotencyKey)
        attempt = try row.decode(c.attempts)
        createdAt = try row.decode(c.createdAt)
        firstClaimedAt = try row.decode(c.firstClaimedAt)
        nextAction = NextAction(rawValue: try row.decode(c.nextAction)) ?? .send
        environment = try row.decode(c.environment)
        // A lane this build does not know (a newer migration's) queues as its kind's own lane:
        // refusing the row would leave a claimed event unprocessed until its lease expired.
        claimLane = Lane(rawValue: Int(try row.decode(c.claimLane, as: Int16.self))) ?? Lane(kind: kind, channel: channel)
        orderSessionKey = try row.decode(c.orderSessionKey)
        amountCents = try row.decode(c.amountCents)
        currency = try row.decode(c.currency)
        refundedBeforeCents = try row.decode(c.refundedBeforeCents)
        requestBody = try row.decode(c.requestBody, as: PGRawText.self).bytes
        credentials = try SealedCredentials(row: row, columns: c.credentials)
        rateLimitPerSecond = try row.decode(c.rateLimitPerSecond, as: Int32?.self).map(Int.init)
    }
}
