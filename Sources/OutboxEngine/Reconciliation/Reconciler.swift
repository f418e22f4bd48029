import FlexChargeAPI
import Foundation
import LibPQ

/// Compares what we recorded for a merchant's evaluates of one UTC day with the orders FlexCharge
/// lists for that day (`GET /orders`, paged), and lists every difference.
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
                SELECT order_session_key, order_id, decision, amount_cents FROM flexcharge.outbox
                 WHERE merchant_id = $1 AND environment = $2 AND kind = 'evaluate' AND order_session_key IS NOT NULL
                   AND created_at >= $3 AND created_at < $3 + interval '1 day'
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
                let ourDecision: String? = try record.decode("decision")
                let theirDecision = EventDelivery.decision(for: order)
                if ourDecision != theirDecision {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: "decision: ours \(ourDecision ?? "none"), FlexCharge \(theirDecision)"))
                }
                let ourAmount: Int64? = try record.decode("amount_cents")
                if let amount = order.amount, let ourAmount, Int64(amount) != ourAmount {
                    differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: orderID,
                                                  problem: "amount: ours \(ourAmount) cents, FlexCharge \(amount) cents"))
                }
            }
            for (key, order) in theirs.sorted(by: { $0.key < $1.key }) where !ourKeys.contains(key) {
                differences.append(Difference(environment: environmentName, orderSessionKey: key, merchantOrderID: order.referenceNumber,
                                              problem: "at FlexCharge (\(order.statusName ?? "?")), no evaluate of ours"))
            }
        }
        return differences
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
