import FlexChargeAPI
import Foundation
@testable import OutboxEngine
import Testing

/// The one decision and status mapping (Outcomes/Decision.swift), for every status of the contract
/// (docs: flexcharge-api.md §5.11, §6.1, §6.2, §6.7) and for values it does not know.
@Suite struct DecisionMappingTests {
    // MARK: /evaluate answers (§5.11, and the statuses §6.1 adds)

    @Test(arguments: [
        ("APPROVED", Decision.approved, "succeeded"),
        ("DECLINED", .declined, "succeeded"),
        ("CHALLENGE", .challenge, "awaiting_outcome"),
        ("SUBMITTED", .submitted, "awaiting_outcome"),
        ("CAPTUREREQUIRED", .captureRequired, "awaiting_outcome"),
        ("PROCESSING", .submitted, "awaiting_outcome"),
        ("EXPIRED", .expired, "succeeded"),
        ("CANCELLED", .cancelled, "succeeded"),
        ("approved", .approved, "succeeded"),
        (" Challenge\n", .challenge, "awaiting_outcome"),
        ("CaptureRequired", .captureRequired, "awaiting_outcome"),
    ])
    func everyEvaluateStatusHasOneDecisionAndState(status: String, decision: Decision, state: String) {
        #expect(Decision(evaluateStatus: status) == decision)
        #expect(Decision(evaluateStatus: status)?.eventState == state)
    }

    @Test(arguments: [nil, "", "NOTFOUND", "SUCCESS", "FAILED", "PENDING", "APPROVED!", "APPRO VED", "null", "0",
                      "{\"status\":\"APPROVED\"}", "DECLINED\u{0}", String(repeating: "A", count: 10_000)])
    func anEvaluateStatusNotUnderstoodHasNoDecision(status: String?) {
        #expect(Decision(evaluateStatus: status) == nil)
    }

    @Test func onlyApprovedDeclinedExpiredAndCancelledAreFinal() {
        #expect(Set(Decision.allCases.filter(\.isFinal)) == [.approved, .declined, .expired, .cancelled])
        #expect(Set(Decision.allCases.filter { !$0.isFinal }) == [.challenge, .submitted, .captureRequired])
        for decision in Decision.allCases {
            #expect(Decision(rawValue: decision.rawValue) == decision)
            #expect(Decision(evaluateStatus: decision.rawValue) == decision)
        }
    }

    // MARK: order statuses (§6.2: status 0–7 with statusName)

    @Test func everyOrderStatusIsReadByNameAndByNumber() throws {
        let names = ["DRAFT", "ONHOLD", "CANCELLED", "PROBLEM", "PROCESSING", "CAPTUREREQUIRED", "RETURNED", "COMPLETED"]
        #expect(OrderStatus.allCases.map(\.name) == names)
        for (code, name) in names.enumerated() {
            #expect(OrderStatus(name: name)?.rawValue == code)
            #expect(OrderStatus(name: name.lowercased())?.rawValue == code)
            #expect(try OrderStatus(of: order(statusName: name))?.rawValue == code)
            #expect(try OrderStatus(of: order(status: code))?.rawValue == code)
            // The name wins over a number that disagrees.
            #expect(try OrderStatus(of: order(status: (code + 1) % 8, statusName: name))?.rawValue == code)
        }
        #expect(OrderStatus(name: "Capturerequired") == .captureRequired)  // as the docs print it
    }

    @Test func anOrderStatusNotUnderstoodIsNil() throws {
        for name in ["CHARGEBACK", "EXPIRED", "APPROVED", "", "  ", "COMPLETED2", "7"] {
            #expect(OrderStatus(name: name) == nil, "\(name)")
        }
        #expect(try OrderStatus(of: order()) == nil)
        #expect(try OrderStatus(of: order(status: 8)) == nil)
        #expect(try OrderStatus(of: order(status: -1)) == nil)
        #expect(try OrderStatus(of: order(statusName: "")) == nil)
        #expect(try OrderStatus(of: order(status: 8, statusName: "")) == nil)
        #expect(try OrderStatus(of: order(status: 7, statusName: "CHARGEBACK")) == nil)  // a name we do not know is not overruled
        #expect(try OrderStatus(of: order(status: 7, statusName: "")) == .completed)
    }

    /// What each order status means for each decision we may hold (nil: the answer was never learned).
    @Test func everyOrderStatusSettlesEveryKnownDecision() {
        let pending: [Decision?] = [.challenge, .submitted, .captureRequired]
        for known in [nil] + Decision.allCases.map(Optional.some) {
            for pastExpiry in [false, true] {
                for status in OrderStatus.allCases {
                    let settled = Decision.settled(by: status, known: known, pastExpiry: pastExpiry)
                    let expected: Decision
                    switch status {
                    case .completed, .returned: expected = .approved
                    case .captureRequired: expected = .captureRequired
                    case .cancelled:
                        if let known, [.declined, .cancelled, .expired].contains(known) { expected = known }
                        else if pastExpiry { expected = .expired }
                        else if known == nil { expected = .declined }
                        else { expected = .cancelled }
                    case .draft, .onHold, .problem, .processing:
                        expected = pending.contains(known) ? known! : .submitted
                    }
                    #expect(settled == expected, "\(status) known \(known?.rawValue ?? "nil") pastExpiry \(pastExpiry)")
                }
            }
        }
    }

    /// The disagreements of issue 16: a lost answer found cancelled is DECLINED; an order we knew as
    /// pending and that FlexCharge cancelled is CANCELLED (EXPIRED past its expiry); and none of the
    /// three moves a decision already final.
    @Test func cancelledMeansDeclinedCancelledOrExpiredByWhatWeKnew() {
        #expect(Decision.settled(by: .cancelled, known: nil, pastExpiry: false) == .declined)
        #expect(Decision.settled(by: .cancelled, known: .submitted, pastExpiry: false) == .cancelled)
        #expect(Decision.settled(by: .cancelled, known: .submitted, pastExpiry: true) == .expired)
        #expect(Decision.settled(by: .cancelled, known: .challenge, pastExpiry: false) == .cancelled)
        #expect(Decision.settled(by: .cancelled, known: .captureRequired, pastExpiry: false) == .cancelled)
        #expect(Decision.settled(by: .cancelled, known: .declined, pastExpiry: true) == .declined)
        #expect(Decision.settled(by: .cancelled, known: .approved, pastExpiry: false) == .cancelled)
    }

    // MARK: webhooks (§6.7)

    @Test func everyWebhookEventSettlesAnAwaitingEvaluate() {
        let expected: [String: Decision?] = [
            "order.completed": .approved, "order.expired": .expired, "order.cancelled": .cancelled,
            "order.refunded": nil, "order.capturerequired": .captureRequired, "payment.chargeback.received": nil,
            "challenge.presented": nil, "challenge.attempted": nil, "challenge.passed": nil, "challenge.failed": .declined,
            "payout.created": nil, "payout.updated": nil, "": nil, "ORDER.COMPLETED": nil, "order.completed ": nil, "garbage": nil,
        ]
        for known in [Decision.challenge, .submitted, .captureRequired] {
            for (event, decision) in expected {
                #expect(Decision.settled(byWebhook: event, known: known) == decision, "\(event) known \(known)")
            }
        }
        #expect(Decision.settled(byWebhook: "order.cancelled", known: nil) == .declined)
        #expect(Decision.settled(byWebhook: "order.completed", known: nil) == .approved)
    }

    /// Refunds, cancellations and chargebacks after approval change money (money_adjustments), never
    /// the decision; nothing moves a final decision.
    @Test func aFinalDecisionIsNeverChangedByAWebhook() {
        for known in Decision.allCases where known.isFinal {
            for event in ["order.completed", "order.expired", "order.cancelled", "order.refunded", "order.capturerequired",
                          "payment.chargeback.received", "challenge.failed", "challenge.passed"] {
                #expect(Decision.settled(byWebhook: event, known: known) == nil, "\(event) known \(known)")
            }
        }
    }

    // MARK: reconcile's comparison

    @Test func reconcileAgreesExactlyWhenALookupWouldLeaveOurDecision() throws {
        let agree: [(String, String?)] = [
            ("COMPLETED", "APPROVED"), ("RETURNED", "APPROVED"), ("CAPTUREREQUIRED", "CAPTUREREQUIRED"),
            ("CANCELLED", "DECLINED"), ("CANCELLED", "CANCELLED"), ("CANCELLED", "EXPIRED"),
            ("PROCESSING", "SUBMITTED"), ("PROCESSING", "CHALLENGE"), ("DRAFT", "SUBMITTED"), ("ONHOLD", "CHALLENGE"),
            ("PROBLEM", "SUBMITTED"),
        ]
        for (status, ours) in agree {
            #expect(Reconciler.decisionProblem(recorded: ours, cancelledAfterApproval: false, order: try order(statusName: status),
                                               pastExpiry: false) == nil, "\(status) \(ours ?? "nil")")
        }
        let differ: [(String, String?)] = [
            ("COMPLETED", "DECLINED"), ("COMPLETED", "CHALLENGE"), ("COMPLETED", nil), ("RETURNED", "CANCELLED"),
            ("CANCELLED", "APPROVED"), ("CANCELLED", "SUBMITTED"), ("CANCELLED", nil), ("CAPTUREREQUIRED", "APPROVED"),
            ("PROCESSING", "APPROVED"), ("DRAFT", "EXPIRED"), ("ONHOLD", "DECLINED"), ("PROCESSING", "garbage"),
        ]
        for (status, ours) in differ {
            let problem = Reconciler.decisionProblem(recorded: ours, cancelledAfterApproval: false, order: try order(statusName: status),
                                                     pastExpiry: false)
            #expect(problem?.hasPrefix("decision: ours \(ours ?? "none"), FlexCharge \(status) (") == true, "\(problem ?? "none")")
        }
        // An approved order FlexCharge cancelled agrees once the reports count its cancellation.
        #expect(Reconciler.decisionProblem(recorded: "APPROVED", cancelledAfterApproval: true, order: try order(statusName: "CANCELLED"),
                                           pastExpiry: false) == nil)
        #expect(Reconciler.decisionProblem(recorded: "APPROVED", cancelledAfterApproval: true, order: try order(statusName: "COMPLETED"),
                                           pastExpiry: false) != nil)
        // A status FlexCharge sends that we do not know is always a difference, shown safely.
        let odd = Reconciler.decisionProblem(recorded: "APPROVED", cancelledAfterApproval: false,
                                             order: try order(statusName: "CHARGEBACK\u{1B}[31m"), pastExpiry: false)
        #expect(odd?.contains("not understood") == true)
        #expect(odd?.contains("\u{1B}") == false)
    }

    private func order(status: Int? = nil, statusName: String? = nil) throws -> Order {
        var object: [String: Any] = ["id": "fc-1"]
        if let status { object["status"] = status }
        if let statusName { object["statusName"] = statusName }
        return try JSONDecoder().decode(Order.self, from: JSONSerialization.data(withJSONObject: object))
    }
}
