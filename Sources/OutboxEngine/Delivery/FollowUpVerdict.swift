import FlexChargeAPI

/// What FlexCharge's order says about a follow-up (refund, cancel, external cancel, capture) whose
/// earlier call may have reached it: the rule that decides whether sending again is safe.
///
/// Events of one order run one at a time (per-order order in `flexcharge.claim()`), so while a
/// refund is looked up no other refund of its order is in flight, and the order's refunded amount
/// can be compared exactly with what this outbox has recorded.
enum FollowUpVerdict: Sendable, Equatable {
    /// The earlier call took effect: the event succeeded; nothing is sent.
    case applied(decision: String?)
    /// It did not: sending again (with the event's own idempotency key, where the call takes one) is safe.
    case notApplied
    /// It did not, and it cannot any more (e.g. a capture of an order FlexCharge has cancelled): failed.
    case impossible(String)
    /// The answer cannot settle it: the event stops for an operator and is never re-sent blindly.
    case unresolved(String)

    /// The verdict for `kind` given FlexCharge's `order` (`nil`: FlexCharge has no such order).
    ///
    /// - Parameters:
    ///   - amountCents: the event's own amount (refund, capture).
    ///   - refundedBeforeCents: what this outbox recorded as refunded on the same order by other events.
    static func judge(
        _ kind: ClaimedEvent.Kind, order: Order?, amountCents: Int64?, refundedBeforeCents: Int64?
    ) -> FollowUpVerdict {
        let status = order.flatMap(OrderStatus.init(of:))  // the engine's one reading of statusName / status
        switch kind {
        case .refund:
            guard let order else { return .notApplied }  // sending again gets FlexCharge's own 404
            guard let refunded = order.refundedAmount else {
                return .unresolved("FlexCharge's order \(order.id) does not report its refunded amount, so whether this refund was applied cannot be told; check the order in FlexCharge's portal")
            }
            let before = refundedBeforeCents ?? 0
            let mine = amountCents ?? 0
            if Int64(refunded) == before + mine { return .applied(decision: "SUCCESS") }
            if Int64(refunded) == before { return .notApplied }
            return .unresolved(
                "FlexCharge shows \(Self.dollars(Int64(refunded))) refunded on order \(order.id); this outbox has recorded \(Self.dollars(before)) and this refund is \(Self.dollars(mine)): refunded elsewhere or by an event that did not settle; check the order in FlexCharge's portal, then skip this event or insert a new refund")
        case .cancel, .externalCancel:
            if status == .cancelled { return .applied(decision: nil) }
            return .notApplied  // cancels are idempotent by order id; FlexCharge refuses one it cannot apply
        case .capture:
            guard let order else { return .notApplied }
            switch status {
            case .completed, .returned: return .applied(decision: "SUCCESS")
            case .captureRequired: return .notApplied
            case .cancelled:
                return .impossible("FlexCharge's order \(order.id) is CANCELLED: there is nothing to capture")
            case .draft, .onHold, .problem, .processing, nil:
                return .unresolved("FlexCharge's order \(order.id) is \(status?.name ?? "in an unknown status"), neither captured nor awaiting capture; check it in FlexCharge's portal")
            }
        case .evaluate, .transmit:
            return .unresolved("\(kind.rawValue) events are not judged as follow-ups")  // never asked: see EventDelivery
        }
    }

    /// Cents as dollars for a readable reason (`1234` → `12.34`).
    private static func dollars(_ cents: Int64) -> String { DollarAmount.jsonNumber(cents: Int(cents)) }
}
