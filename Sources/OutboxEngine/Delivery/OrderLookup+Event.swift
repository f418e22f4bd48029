import FlexChargeAPI
import Foundation
import Logging

extension OrderIdentity {
    /// What an event's request told FlexCharge about its order, for ``FlexChargeClient/findOrder(_:credentials:)``:
    /// the gateway's order id, the amount and currency columns, and the payer's e-mail and billing names from the
    /// payload. No order of the event can have been placed before it was written (less five minutes of clock skew).
    init(event: ClaimedEvent) {
        let payload = (try? JSONSerialization.jsonObject(with: Data(event.requestBody))) as? [String: Any] ?? [:]
        let payer = payload["payer"] as? [String: Any]
        let billing = payload["billingInformation"] as? [String: Any]
        self.init(merchantOrderId: event.orderID, placedAfter: event.createdAt.addingTimeInterval(-300),
                  amountCents: event.amountCents.map { Int($0) }, currency: event.currency,
                  email: payer?["email"] as? String, firstName: billing?["firstName"] as? String,
                  lastName: billing?["lastName"] as? String)
    }
}

/// No guess of the order lookup settled whether FlexCharge has the order an earlier attempt may have
/// created (``OrderLookupResult/unresolved(_:)``). Sending again could charge twice, so the event is
/// parked: `dead` with `last_error_class = 'unresolved'` and the reason, like an unsettled follow-up
/// (``FollowUpVerdict/unresolved(_:)``). An operator checks FlexCharge's portal, then skips the event
/// or retries it (a retry looks it up again).
struct UnresolvedLookup: Error {
    let reason: String

    func park(_ event: ClaimedEvent, completion: Completion, logger: Logger) -> Completion {
        logger.warning("order lookup left to an operator", metadata: [
            "event": "\(event.id)", "kind": "\(event.kind.rawValue)", "merchant": "\(event.merchantID)"])
        var parked = completion
        parked.httpStatus = 200
        parked.outcome = .dead
        parked.failureClass = "unresolved"
        parked.error = "order lookup unresolved: \(reason)"
        parked.finishedAt = Date()
        return parked
    }
}
