import FlexChargeAPI
import Foundation
import LibPQ

/// Compares what we recorded for a merchant's evaluates of one UTC day with the orders FlexCharge
/// lists for that day (`GET /orders`, paged), and lists every difference: an order only one side
/// knows, a decision that disagrees with FlexCharge's status (``Decision``), an amount, or the cents
/// refunded (our succeeded refund events against the order's `refundedAmount`, when FlexCharge gives it).
public struct Reconciler: Sendable {
    /// One disagreement between our records and FlexCharge.
    public struct Difference: Sendable, Codable, Equatable {
        public let environment: String
        public let orderSessionKey: String
        public let merchantOrderID: String?
        public let problem: String
    }

    let session: PGSession
    let sealer: CredentialSealer
    let environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment]

    public init(session: PGSession, sealer: CredentialSealer, environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment]) {
        self.session = session
        self.sealer = sealer
        self.environments = environments
    }

    /// Every difference for `merchantID` on `day` (UTC midnight), in each environment with credentials.
    public func differences(merchantID: String, day: Date) async throws -> [Difference] {
        var differences: [Difference] = []
        for sealed in try await SealedCredentials.load(.api, merchantID: merchantID, on: session) {
            let environmentName = sealed.environment
            guard let name = FlexChargeEnvironment.Name(rawValue: environmentName), let environment = environments[name] else { continue }
            let merchant = try sealer.apiCredentials(sealed)
            let theirs = try await orders(of: merchant, in: environment, day: day)
            let ours = try await session.query(
                """
                SELECT o.order_session_key, o.order_id, o.decision, o.amount_cents, o.payload ->> 'expiryDateUtc' AS expiry,
                       EXISTS (SELECT 1 FROM flexcharge.money_adjustments a
                                WHERE a.merchant_id = o.merchant_id AND a.environment = o.environment
                                  AND a.order_session_key = o.order_session_key AND a.kind = 'cancellation') AS cancelled_after_approval,
                       (SELECT coalesce(sum(r.amount_cents), 0)::bigint FROM flexcharge.outbox r
                         WHERE r.merchant_id = o.merchant_id AND r.environment = o.environment AND r.kind = 'refund'
                           AND r.state = 'succeeded' AND r.order_session_key = o.order_session_key) AS refunded_cents
                  FROM flexcharge.outbox o
                 WHERE o.merchant_id = $1 AND o.environment = $2 AND o.kind = 'evaluate' AND o.order_session_key IS NOT NULL
                   AND o.created_at >= $3 AND o.created_at < $3 + interval '1 day'
                """, [merchantID, environmentName, day]).rows
            var ourKeys = Set<String>()
            for record in ours {
                let key: String = try record.decode("order_session_key")
                let orderID: String = try record.decode("order_id")
                ourKeys.insert(key)
                guard let order = theirs[key] else {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: "recorded by us, unknown to FlexCharge"))
                    continue
                }
                let recorded: String? = try record.decode("decision")
                let expiry = OutcomeRules.date(try record.decode("expiry", as: String?.self)) ?? OutcomeRules.date(order.expiryDate)
                if let problem = Self.decisionProblem(
                    recorded: recorded, cancelledAfterApproval: try record.decode("cancelled_after_approval"), order: order,
                    pastExpiry: expiry.map { $0 <= Date() } ?? false) {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: problem))
                }
                let ourAmount: Int64? = try record.decode("amount_cents")
                if let amount = order.amount, let ourAmount, Int64(amount) != ourAmount {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: "amount: ours \(ourAmount) cents, FlexCharge \(amount) cents"))
                }
                // Money that went back: our succeeded refund events against FlexCharge's refunded amount.
                let ourRefunds: Int64 = try record.decode("refunded_cents")
                if let refunded = order.refundedAmount, Int64(refunded) != ourRefunds {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: "refunded: ours \(ourRefunds) cents, FlexCharge \(refunded) cents"))
                }
            }
            for (key, order) in theirs.sorted(by: { $0.key < $1.key }) where !ourKeys.contains(key) {
                differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: order.referenceNumber,
                                              problem: "at FlexCharge (\(order.statusName ?? "?")), no evaluate of ours"))
            }
        }
        return differences
    }

    /// Why our recorded decision disagrees with FlexCharge's order, or `nil` when it agrees: when
    /// looking the order up now would leave our decision as it is (``Decision/settled(by:known:pastExpiry:)``).
    /// An approved order FlexCharge cancelled agrees when our reports count its cancellation
    /// (flexcharge.money_adjustments).
    static func decisionProblem(recorded: String?, cancelledAfterApproval: Bool, order: Order, pastExpiry: Bool) -> String? {
        let ours = recorded.flatMap(Decision.init(rawValue:))
        guard let status = OrderStatus(of: order) else {
            let shown = SafeText.stored(order.statusName ?? order.status.map(String.init) ?? "none", limit: 40)
            return "decision: ours \(recorded ?? "none"), FlexCharge status \(shown) not understood"
        }
        let known = (ours == .approved && cancelledAfterApproval) ? Decision.cancelled : ours
        let theirs = Decision.settled(by: status, known: known, pastExpiry: pastExpiry)
        guard theirs != known else { return nil }
        return "decision: ours \(recorded ?? "none"), FlexCharge \(status.name) (\(theirs.rawValue))"
    }

    private func orders(of merchant: MerchantCredentials, in environment: FlexChargeEnvironment, day: Date) async throws -> [String: Order] {
        let client = FlexChargeClient(environment: environment)
        defer { Task { try? await client.shutdown() } }
        let formatter = ISO8601DateFormatter()
        var found: [String: Order] = [:]
        var page = 1
        while page <= 1000 {
            let answer = try await client.orders(
                query: OrdersQuery(from: formatter.string(from: day), to: formatter.string(from: day.addingTimeInterval(86_399)),
                                   mid: merchant.mid, pageSize: 100, pageNumber: page),
                credentials: merchant)
            for order in answer.body.items { found[order.id] = order }
            guard answer.body.hasNextPage == true else { break }
            page += 1
        }
        return found
    }
}
