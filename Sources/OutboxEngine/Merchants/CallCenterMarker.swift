/// What tells FlexCharge that a CIT order was keyed in by a call center. FlexCharge documents no
/// MOTO or call-center value (contract §8.2), so it is set per merchant, audited like the switches,
/// and sent on call-center CIT transmits and evaluates only (`flexcharge.request_body()`,
/// migrations/0015_what_is_sent.sql; columns `merchants.call_center_order_source` and
/// `merchants.call_center_card_not_present`).
public struct CallCenterMarker: Sendable, Equatable, Codable {
    /// Sent as `orderSource` (over the payload's); `nil`: none is added. Default `call_center`.
    public var orderSource: String?
    /// Sent as `transaction.cardNotPresent`. Default `true` (a phone order is card-not-present).
    public var cardNotPresent: Bool

    public init(orderSource: String? = CallCenterMarker.default.orderSource, cardNotPresent: Bool = true) {
        self.orderSource = orderSource
        self.cardNotPresent = cardNotPresent
    }

    /// The values a new merchant starts with (the columns' defaults).
    public static let `default` = CallCenterMarker(orderSource: "call_center", cardNotPresent: true)

    /// The constraint that checks an order source (`merchants_call_center_order_source_valid`).
    static let orderSourceConstraint = "merchants_call_center_order_source_valid"
    /// What the constraint asks, for an operator's error message.
    static let orderSourceRule = "1 to 64 characters: letters, digits, space, _ . / - (starting with a letter or digit)"
}

/// A change to a merchant's call-center marker; `nil` fields stay as they are.
public struct CallCenterMarkerChange: Sendable, Equatable {
    /// `.some(nil)` stops sending an `orderSource`.
    public var orderSource: String??
    public var cardNotPresent: Bool?

    public init(orderSource: String?? = nil, cardNotPresent: Bool? = nil) {
        self.orderSource = orderSource
        self.cardNotPresent = cardNotPresent
    }

    public var isEmpty: Bool { orderSource == nil && cardNotPresent == nil }
}
