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
    /// Free-text search (`query`). FlexCharge documents it as a "string search: merchant name, payer name…"
    /// (flexcharge-api.md §6.3); whether it matches your order id is not documented (``OrderLookup``).
    public var query: String?
    /// Sort field, e.g. `createdOn` or `amount`.
    public var orderBy: String?
    /// `asc` or `desc`.
    public var sort: String?

    /// Creates a query; all filters optional.
    public init(from: String? = nil, to: String? = nil, mid: String? = nil, statuses: [Int] = [],
                pageSize: Int? = nil, pageNumber: Int? = nil, query: String? = nil, orderBy: String? = nil,
                sort: String? = nil) {
        self.from = from
        self.to = to
        self.mid = mid
        self.statuses = statuses
        self.pageSize = pageSize
        self.pageNumber = pageNumber
        self.query = query
        self.orderBy = orderBy
        self.sort = sort
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
        if let orderBy { items.append(("orderBy", orderBy)) }
        if let sort { items.append(("sort", sort)) }
        return items
    }
}
