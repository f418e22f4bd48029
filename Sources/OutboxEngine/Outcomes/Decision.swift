import FlexChargeAPI
import Foundation

/// An evaluate's `decision`: what FlexCharge answered, or how the order ended.
///
/// This file is the one home of the mapping from everything FlexCharge says about an order onto a
/// decision and an event state: the `/evaluate` answer's `status` (``init(evaluateStatus:)``), an
/// order's status from `GET /orders/{id}` or `GET /orders` (``settled(by:known:pastExpiry:)``) and a
/// webhook's `Event` (``settled(byWebhook:known:)``). Delivery, the outcome poller, the webhook
/// receiver and `reconcile` all ask here; docs/outcomes.md draws the table.
public enum Decision: String, CaseIterable, Sendable {
    /// Rescued: FlexCharge charged the card (or the order was captured).
    case approved = "APPROVED"
    /// Not rescued.
    case declined = "DECLINED"
    /// The shopper may still rescue it through the UI widget; the final outcome comes later.
    case challenge = "CHALLENGE"
    /// Accepted for asynchronous work (managed MIT); the final outcome comes later.
    case submitted = "SUBMITTED"
    /// Authorised; money moves only when a `capture` event succeeds in the capture window.
    case captureRequired = "CAPTUREREQUIRED"
    /// A MIT order not rescued by its `expiryDateUtc`.
    case expired = "EXPIRED"
    /// Cancelled before money moved (by the merchant's cancel, or a capture window that lapsed).
    case cancelled = "CANCELLED"

    /// True when the order will not change any more: the evaluate's state is `succeeded`.
    var isFinal: Bool {
        switch self {
        case .approved, .declined, .expired, .cancelled: true
        case .challenge, .submitted, .captureRequired: false
        }
    }

    /// The evaluate's state with this decision: `succeeded` when final, else `awaiting_outcome`
    /// (the outcome poller looks it up until a webhook or a lookup makes it final).
    var eventState: String { isFinal ? "succeeded" : "awaiting_outcome" }

    /// The decision an `/evaluate` answer's `status` states (contract §5.11; a re-sent MIT evaluate
    /// answers its order's current `EXPIRED` or `CANCELLED`, and `PROCESSING` is the `/outcome`
    /// word for `SUBMITTED`). `nil` for anything else (`NOTFOUND`, `SUCCESS`, garbage): not understood.
    init?(evaluateStatus: String?) {
        guard let text = evaluateStatus?.trimmingCharacters(in: .whitespacesAndNewlines).uppercased() else { return nil }
        if text == "PROCESSING" {
            self = .submitted
            return
        }
        self.init(rawValue: text)
    }

    /// What FlexCharge's order `status` means for an evaluate we recorded as `known` (`nil`: we never
    /// learned its answer, e.g. the evaluate timed out and was found by lookup).
    ///
    /// - `COMPLETED`, `RETURNED` (refunded after approval): approved.
    /// - `CAPTUREREQUIRED`: awaiting capture.
    /// - `CANCELLED`: the order ended without money. A decision we already hold as final and
    ///   moneyless (declined, cancelled, expired) stands; otherwise past its `expiryDateUtc` it
    ///   expired; an order whose answer we never learned was declined (FlexCharge's portal:
    ///   "Cancelled (declined by Flex)"); an order we knew as pending was cancelled.
    /// - `DRAFT`, `ONHOLD`, `PROBLEM`, `PROCESSING`: still being worked; a pending decision we know
    ///   (CHALLENGE, SUBMITTED, CAPTUREREQUIRED) stands, else SUBMITTED.
    static func settled(by status: OrderStatus, known: Decision?, pastExpiry: Bool) -> Decision {
        switch status {
        case .completed, .returned:
            return .approved
        case .captureRequired:
            return .captureRequired
        case .cancelled:
            if let known, [.declined, .cancelled, .expired].contains(known) { return known }
            if pastExpiry { return .expired }
            return known == nil ? .declined : .cancelled
        case .draft, .onHold, .problem, .processing:
            if let known, !known.isFinal { return known }
            return .submitted
        }
    }

    /// The decision a webhook (contract §6.7) gives an evaluate awaiting its outcome, recorded as
    /// `known`; `nil` when it changes no decision. Refunds, cancellations and chargebacks of a rescued
    /// order change money, not the decision: flexcharge.money_adjustments (migrations/0016) counts them.
    static func settled(byWebhook event: String, known: Decision?) -> Decision? {
        if let known, known.isFinal { return nil }  // an order that ended stays as it ended
        switch event {
        case "order.completed": return .approved
        case "order.expired": return .expired
        case "order.cancelled": return settled(by: .cancelled, known: known, pastExpiry: false)
        case "challenge.failed": return .declined
        case "order.capturerequired": return .captureRequired
        default: return nil  // order.refunded, payment.chargeback.received, challenge progress, payouts, unknown
        }
    }
}
