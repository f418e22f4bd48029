/// The FlexCharge API routes the sandbox serves; the raw value is the label used in faults and the ledger.
enum APIRoute: String, Sendable, CaseIterable {
    case token = "POST /oauth2/token"
    case transmit = "POST /transmit"
    case tokenize = "POST /tokenize"
    case evaluate = "POST /evaluate"
    case outcome = "POST /outcome"
    case order = "GET /orders/{id}"
    case orders = "GET /orders"
    case cancel = "POST /orders/{id}/cancel"
    case externalCancel = "POST /orders/{id}/external-cancel"
    case refund = "POST /orders/{id}/refund"
    case capture = "POST /capture"
}

/// One API request as the engine sees it.
struct APIRequest: Sendable {
    var route: APIRoute
    var pathID: String?
    var query: [(String, String)]
    var authorization: String?
    var body: [UInt8]

    func queryValues(_ name: String) -> [String] {
        query.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}
