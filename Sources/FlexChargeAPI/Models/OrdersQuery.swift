/// Filters and paging for `GET /orders`.
public struct OrdersQuery: Sendable, Hashable {
    /// Earliest placement time, ISO-8601 UTC.
    public var from: String?
    /// Latest placement time, ISO-8601 UTC.
    public var to: String?
    public var mid: String?
    /// Status codes 0–7.
    public var statuses: [Int]
    public var pageSize: Int?
    public var pageNumber: Int?
    /// Free-text search (`query`): FlexCharge matches it against order fields such as your order id.
    public var query: String?

    /// Creates a query; all filters optional.
    public init(from: String? = nil, to: String? = nil, mid: String? = nil, statuses: [Int] = [],
                pageSize: Int? = nil, pageNumber: Int? = nil, query: String? = nil) {
        self.from = from
        self.to = to
        self.mid = mid
        self.statuses = statuses
        self.pageSize = pageSize
        self.pageNumber = pageNumber
        self.query = query
    }

    /// Query items in a stable order (only values present).
    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let from { items.append(("from", from)) }
        if let to { items.append(("to", to)) }
        if let mid { items.append(("mid", mid)) }
        items += statuses.map { ("status", String($0)) }
        if let pageSize { items.append(("pageSize", String(pageSize))) }
        if let pageNumber { items.append(("pageNumber", String(pageNumber))) }
        if let query { items.append(("query", query)) }
        return items
    }
}
