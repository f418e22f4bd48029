/// Where an event queues for claiming: lower lanes are claimed first. The one home of the lanes;
/// SQL mirrors them in migrations/0014_routing_and_lanes.sql (`flexcharge.lane_of(kind, channel)`
/// sets an event's lane at insert, the table `flexcharge.lanes` names them), and LaneTests checks
/// that both agree.
///
/// Raw values are the SQL numbers (`outbox.lane`, `outbox.claim_lane`, the insert NOTIFY's payload).
enum Lane: Int, Sendable, CaseIterable, Comparable {
    /// An evaluate of a customer-initiated order: a shopper is waiting.
    case citEvaluate = 0
    /// An evaluate of a merchant-initiated transaction.
    case mitEvaluate = 1
    /// cancel, refund, capture, external_cancel.
    case followUp = 2
    /// A transmit: a data feed, fire and forget.
    case transmit = 3

    /// The lane of an event of `kind` on `channel` (`cit` or `mit`).
    init(kind: ClaimedEvent.Kind, channel: String) {
        switch kind {
        case .evaluate: self = channel == "cit" ? .citEvaluate : .mitEvaluate
        case .transmit: self = .transmit
        case .cancel, .refund, .capture, .externalCancel: self = .followUp
        }
    }

    /// The name in `flexcharge.lanes`, `queue_health` and the metrics' `lane` label.
    var name: String {
        switch self {
        case .citEvaluate: "cit_evaluate"
        case .mitEvaluate: "mit_evaluate"
        case .followUp: "follow_up"
        case .transmit: "transmit"
        }
    }

    /// An insert into this lane wakes the claim loop at once (someone waits on an evaluate's answer);
    /// other lanes are claimed when the loop next looks.
    var wakesAtOnce: Bool { self <= .mitEvaluate }

    /// Only this lane may use the call slots and claim room the worker keeps for CIT evaluates.
    var usesCITRoom: Bool { self == .citEvaluate }

    /// The insert NOTIFY's payload (the most urgent lane inserted, as its number): does it wake the
    /// claim loop at once? An unreadable payload does not.
    static func wakesAtOnce(notifyPayload: String) -> Bool {
        Int(notifyPayload).flatMap(Lane.init(rawValue:))?.wakesAtOnce ?? false
    }

    /// Per-lane claim caps for `flexcharge.claim()`'s `p_lane_caps` (indexed by raw value): the CIT
    /// lane may take `total`, every other lane `others`.
    static func claimCaps(total: Int, others: Int) -> [Int] {
        allCases.map { $0.usesCITRoom ? total : others }
    }

    static func < (lhs: Lane, rhs: Lane) -> Bool { lhs.rawValue < rhs.rawValue }
}
