import Foundation

/// What the outbox knows about an order it may have created at FlexCharge with a call whose answer was lost
/// (an ambiguous `/evaluate`): the merchant's order id and the fields the request carried.
public struct OrderIdentity: Sendable, Hashable {
    /// The merchant's (gateway's) order id, sent as `orderId`.
    public var merchantOrderId: String
    /// No order of ours can have been placed before this instant (the event's creation, less a clock skew).
    public var placedAfter: Date
    public var amountCents: Int?
    public var currency: String?
    public var email: String?
    public var firstName: String?
    public var lastName: String?

    /// Creates an identity; every field but the order id and the window start is optional.
    public init(merchantOrderId: String, placedAfter: Date, amountCents: Int? = nil, currency: String? = nil,
                email: String? = nil, firstName: String? = nil, lastName: String? = nil) {
        self.merchantOrderId = merchantOrderId
        self.placedAfter = placedAfter
        self.amountCents = amountCents
        self.currency = currency
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
    }
}

/// What ``FlexChargeClient/findOrder(_:credentials:)`` concluded.
public enum OrderLookupResult: Sendable, Hashable {
    /// Exactly one order carries the merchant's order id as its `referenceNumber`, and none of its amount,
    /// currency or payer e-mail disagrees with what was sent.
    case found(Order)
    /// Certain: every order placed since ``OrderIdentity/placedAfter`` was read, none carries the order id and
    /// none resembles the request (same amount and payer) under another or no reference.
    case notFound
    /// No guess settled it (two orders carry the id, one that does disagrees with the request, one resembling it
    /// carries another or no reference, or too many orders to read): an operator decides; never send again.
    case unresolved(String)
}

/// How the client finds the order an ambiguous call may have created, without trusting any one guess.
///
/// FlexCharge documents no lookup by the merchant's order id. `GET /orders` has a `query` parameter described as a
/// "string search: merchant name, payer name…" (flexcharge-api.md §6.3), and an order's `referenceNumber` is
/// described only as a "reference unique to this request" (§6.2). So the lookup makes several guesses, cheapest
/// first, and accepts an order only when its `referenceNumber` is the merchant's order id and nothing else in it
/// disagrees with the request:
///
/// 1. `query` = the merchant's order id (a search that matches order ids finds it at once);
/// 2. `query` = the payer's name (the documented name search), when the request named the payer;
/// 3. every order placed since the event was written (`from`, oldest first, all pages): the only guess that can
///    prove the order is *not* there. An order found there that resembles the request (same amount, same payer
///    e-mail or name, nothing contradicting) under another or no reference means the reference guess itself may
///    be wrong: unresolved, never "not found".
public enum OrderLookup {
    /// Orders asked for per page.
    public static let pageSize = 100
    /// Pages read per guess; a window holding more orders cannot be read to the end and stays unresolved.
    public static let maximumPages = 50

    /// How one listed order relates to the identity.
    enum Match: Equatable {
        /// Carries the order id and agrees with the request.
        case same
        /// Carries the order id but disagrees (the reason says how).
        case contradicts(String)
        /// Carries another or no reference but looks like the request.
        case resembles
        /// Another order.
        case other
    }

    /// How `order` relates to `identity` (a pure rule: see ``OrderLookup``).
    static func compare(_ order: Order, with identity: OrderIdentity) -> Match {
        let differences = disagreements(order, identity)
        if order.referenceNumber == identity.merchantOrderId {
            return differences.isEmpty ? .same : .contradicts(differences.joined(separator: ", "))
        }
        guard differences.isEmpty, let amount = identity.amountCents, order.amount == amount else { return .other }
        let sameEmail = identity.email.map { order.email?.lowercased() == $0.lowercased() } ?? false
        let sameName = identity.firstName != nil && identity.lastName != nil
            && order.firstName?.lowercased() == identity.firstName?.lowercased()
            && order.lastName?.lowercased() == identity.lastName?.lowercased()
        return order.referenceNumber == nil || sameEmail || sameName ? .resembles : .other
    }

    /// The fields both sides know and that differ (names of the fields only: no values, which may be personal).
    private static func disagreements(_ order: Order, _ identity: OrderIdentity) -> [String] {
        var fields: [String] = []
        if let mine = identity.amountCents, let theirs = order.amount, mine != theirs { fields.append("amount") }
        if let mine = identity.currency, let theirs = order.currencyCode, mine.uppercased() != theirs.uppercased() {
            fields.append("currency")
        }
        if let mine = identity.email, let theirs = order.email, mine.lowercased() != theirs.lowercased() { fields.append("payer e-mail") }
        return fields
    }

    /// The verdict of one guess over the orders it listed; `complete`: the listing covered every order placed in
    /// the window (only then do "nothing found" and "only resemblances" mean anything).
    static func judge(_ orders: [Order], identity: OrderIdentity, complete: Bool) -> OrderLookupResult? {
        var same: [Order] = []
        var contradictions: [String] = []
        var resemblances: [Order] = []
        for order in orders {
            switch compare(order, with: identity) {
            case .same: same.append(order)
            case .contradicts(let fields): contradictions.append("order \(order.id) carries this order id but its \(fields) differs from the request")
            case .resembles: resemblances.append(order)
            case .other: break
            }
        }
        if let contradiction = contradictions.first {
            return .unresolved("\(contradiction); check it in FlexCharge's portal")
        }
        if same.count > 1 {
            return .unresolved("\(same.count) FlexCharge orders (\(same.map(\.id).joined(separator: ", "))) carry this order id; which one this event created cannot be told")
        }
        if let order = same.first { return .found(order) }
        guard complete else { return nil }
        if let order = resemblances.first {
            let reference = order.referenceNumber.map { "reference \($0)" } ?? "no reference number"
            return .unresolved("no FlexCharge order carries this order id, but order \(order.id) placed since the event was written has its amount and payer under \(reference): it may be this event's; check it in FlexCharge's portal")
        }
        return .notFound
    }
}

extension FlexChargeClient {
    /// Finds the order an ambiguous call may have created: the guesses of ``OrderLookup``, in order, until one
    /// settles it. Throws the ``FlexChargeError`` of a failed `GET /orders`, once ``ReadRetry`` gave up on it (the
    /// caller retries the lookup).
    public func findOrder(_ identity: OrderIdentity, credentials: MerchantCredentials) async throws -> OrderLookupResult {
        let names = [identity.firstName, identity.lastName].compactMap { $0 }.joined(separator: " ")
        for text in [identity.merchantOrderId, names] where !text.isEmpty {
            let listing = try await listOrders(placedAfter: identity.placedAfter, query: text, credentials: credentials)
            if let verdict = OrderLookup.judge(listing.orders, identity: identity, complete: false) { return verdict }
        }
        let window = try await listOrders(placedAfter: identity.placedAfter, query: nil, credentials: credentials)
        if let verdict = OrderLookup.judge(window.orders, identity: identity, complete: window.complete) { return verdict }
        return .unresolved("more than \(OrderLookup.maximumPages * OrderLookup.pageSize) FlexCharge orders were placed since the event was written and none read so far carries this order id; whether FlexCharge has it cannot be told")
    }

    /// Every order `GET /orders` lists for `query` placed since `placedAfter`, oldest first, up to
    /// ``OrderLookup/maximumPages`` pages; `complete` when the last page was reached.
    private func listOrders(placedAfter: Date, query: String?, credentials: MerchantCredentials) async throws -> (orders: [Order], complete: Bool) {
        let from = placedAfter.formatted(Date.ISO8601FormatStyle())
        var orders: [Order] = []
        var seen: Set<String> = []
        for page in 1...OrderLookup.maximumPages {
            let answer = try await ReadRetry.run {
                try await self.orders(
                    query: OrdersQuery(from: from, mid: credentials.mid, pageSize: OrderLookup.pageSize, pageNumber: page,
                                       query: query, orderBy: "createdOn", sort: "asc"),
                    credentials: credentials).body
            }
            for order in answer.items where seen.insert(order.id).inserted { orders.append(order) }
            // Without hasNextPage or pageCount, pages are read until an empty one.
            let more = answer.hasNextPage ?? answer.pageCount.map { page < $0 } ?? !answer.items.isEmpty
            if !more { return (orders, true) }
        }
        return (orders, false)
    }
}
