/// One page of `GET /orders`.
public struct OrdersPage: Decodable, Sendable, Hashable {
    public var items: [Order]
    public var pageNumber: Int?
    public var pageSize: Int?
    public var pageCount: Int?
    public var totalItemCount: Int?
    public var hasNextPage: Bool?
}
