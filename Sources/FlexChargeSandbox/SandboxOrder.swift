import FlexChargeAPI
import Foundation

/// An order held by the sandbox.
struct SandboxOrder: Sendable {
    /// `GET /orders/{id}` status codes and their upper-case `statusName` (the client's model).
    typealias Status = OrderStatus

    var id: String
    var mid: String
    var merchantOrderId: String
    var amountCents: Int
    var currency: String
    var isMIT: Bool
    var status: Status
    /// What `/evaluate` and `/outcome` report: APPROVED, DECLINED, CHALLENGE, SUBMITTED, CAPTUREREQUIRED,
    /// EXPIRED, CANCELLED.
    var decision: String
    var createdAt: Date
    var expiryDate: Date?
    /// When a pending managed MIT order completes on its own (`nil`: it waits for expiry).
    var completesAt: Date?
    var email: String?
    /// The payer's names (`billingInformation.firstName`/`lastName`), what a name search of `GET /orders` reads.
    var firstName: String?
    var lastName: String?
    /// FlexCharge's own reference when ``ReferenceNumbers/generated`` is configured; `nil`: `referenceNumber`
    /// is the merchant's order id.
    var generatedReference: String?
    var refundedCents = 0
    var charged = false

    /// Short confirmation reference derived from the id (as in webhooks and `/outcome`).
    var confirmationId: String { String(id.replacingOccurrences(of: "-", with: "").prefix(8)).uppercased() }

    /// Whether `/cancel` is allowed: MIT in Draft/Processing/CAPTUREREQUIRED, CIT in CAPTUREREQUIRED.
    var isCancellable: Bool {
        isMIT ? [.draft, .processing, .captureRequired].contains(status) : status == .captureRequired
    }

    /// The `/outcome` status.
    var outcome: String {
        switch decision {
        case "CHALLENGE": "PROCESSING"
        case "CAPTUREREQUIRED": status == .completed ? "APPROVED" : "PROCESSING"
        default: decision
        }
    }

    /// `referenceNumber` as `GET /orders` reports it.
    var referenceNumber: String { generatedReference ?? merchantOrderId }

    /// A reference of FlexCharge's own for the order `id` (``ReferenceNumbers/generated``).
    static func generatedReference(id: String) -> String {
        "FC-" + String(id.replacingOccurrences(of: "-", with: "").suffix(10)).uppercased()
    }

    /// Whether a name search (``OrderSearch/name``) for `text` finds this order.
    func matchesName(_ text: String) -> Bool {
        let needle = text.lowercased().trimmingCharacters(in: .whitespaces)
        guard !needle.isEmpty else { return true }
        let fullName = [firstName, lastName].compactMap { $0 }.joined(separator: " ")
        return [firstName ?? "", lastName ?? "", fullName].contains { !$0.isEmpty && $0.lowercased().contains(needle) }
    }

    /// The JSON object of `GET /orders/{id}` (keys in sorted order, like every sandbox answer).
    func json(iso: (Date) -> String) -> [UInt8] {
        var object = SandboxJSONWriter.ObjectWriter()
        object.add("amount", amountCents)
        object.add("correlationId", id)
        object.add("currencyCode", currency)
        object.add("currencySymbol", "$")
        object.add("email", email)
        object.add("expiryDate", expiryDate.map(iso))
        object.add("firstName", firstName)
        object.add("id", id)
        object.add("isMIT", isMIT)
        object.add("lastName", lastName)
        object.add("mid", mid)
        object.add("orderPlacedDate", iso(createdAt))
        object.add("referenceNumber", referenceNumber)
        object.add("refundedAmount", refundedCents)
        object.add("status", status.rawValue)
        object.add("statusName", status.name)
        return object.finish()
    }
}
