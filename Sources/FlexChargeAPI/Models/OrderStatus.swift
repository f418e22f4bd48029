import Foundation

/// FlexCharge's order status (`GET /orders/{id}`, `GET /orders`: `status` 0–7 with its `statusName`,
/// contract §6.2). What each means for an evaluate's decision: `Decision` in the engine
/// (Sources/OutboxEngine/Outcomes/Decision.swift); the sandbox simulator keeps its orders in it.
public enum OrderStatus: Int, CaseIterable, Sendable {
    case draft = 0, onHold, cancelled, problem, processing, captureRequired, returned, completed

    /// The upper-case `statusName` (the real sandbox spells `CAPTUREREQUIRED` so).
    public var name: String {
        switch self {
        case .draft: "DRAFT"
        case .onHold: "ONHOLD"
        case .cancelled: "CANCELLED"
        case .problem: "PROBLEM"
        case .processing: "PROCESSING"
        case .captureRequired: "CAPTUREREQUIRED"
        case .returned: "RETURNED"
        case .completed: "COMPLETED"
        }
    }

    /// From a `statusName` in any case (`Capturerequired` as the docs print it); `nil` when unknown.
    public init?(name: String?) {
        guard let text = name?.trimmingCharacters(in: .whitespacesAndNewlines).uppercased(),
              let status = Self.allCases.first(where: { $0.name == text }) else { return nil }
        self = status
    }

    /// An order's status: its `statusName` when it names one, else its integer `status`; `nil` when
    /// neither is understood (the caller looks again later, or reports it).
    public init?(of order: Order) {
        if let status = OrderStatus(name: order.statusName) {
            self = status
        } else if order.statusName == nil || order.statusName?.isEmpty == true, let code = order.status,
                  let status = OrderStatus(rawValue: code) {
            self = status
        } else {
            return nil
        }
    }
}
