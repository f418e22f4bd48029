import Foundation

/// An API answer before it becomes an HTTP response.
struct SandboxReply: Sendable {
    var status: Int
    var body: [UInt8]
    var headers: [(String, String)] = []
    /// What the ledger records as the decision/operation status.
    var ledgerStatus: String?
    var orderSessionKey: String?
    /// Ledger metadata: who asked, about which merchant order, with which key.
    var mid: String?
    var merchantOrderId: String?
    var idempotencyKey: String?

    /// The reply as the ledger keeps it: its metadata without the body and headers.
    var withoutBody: SandboxReply {
        var copy = self
        copy.body = []
        copy.headers = []
        return copy
    }

    /// A JSON answer (keys sorted, so equal objects give equal bytes).
    static func json(_ status: Int, _ object: [String: Any], ledgerStatus: String? = nil, orderSessionKey: String? = nil) -> SandboxReply {
        SandboxReply(status: status, body: SandboxJSONWriter.bytes(object), ledgerStatus: ledgerStatus, orderSessionKey: orderSessionKey)
    }

    /// The common success envelope plus endpoint fields.
    static func envelope(_ fields: [String: Any], status: Int = 200, ledgerStatus: String? = nil, orderSessionKey: String? = nil) -> SandboxReply {
        var object: [String: Any] = ["success": true, "result": NSNull(), "status": NSNull(), "statusCode": NSNull(),
                                     "errors": [Any](), "customProperties": [String: Any]()]
        object.merge(fields) { $1 }
        return json(status, object, ledgerStatus: ledgerStatus ?? fields["status"] as? String, orderSessionKey: orderSessionKey)
    }

    /// A ProblemDetails-style error (`title`) such as 404 `Not Found` or 409.
    static func problem(_ status: Int, _ title: String) -> SandboxReply {
        json(status, ["status": status, "title": title, "traceId": traceId()], ledgerStatus: "HTTP\(status)")
    }

    /// 401 with an empty body, as FlexCharge answers.
    static let unauthorized = SandboxReply(status: 401, body: [], ledgerStatus: "UNAUTHORIZED")

    /// A 400 validation answer in the configured shape.
    static func validation(_ errors: [String: [String]], shape: ValidationErrorShape) -> SandboxReply {
        switch shape {
        case .flat:
            var object: [String: Any] = errors
            object["TraceId"] = [traceId()]
            return json(400, object, ledgerStatus: "INVALID")
        case .nested:
            return json(400, ["status": 400, "title": "One or more validation errors occurred.", "traceId": traceId(),
                              "errors": errors], ledgerStatus: "INVALID")
        }
    }

    /// A W3C traceparent-style id.
    static func traceId() -> String {
        let hex = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return "00-\(hex)-\(hex.prefix(16))-01"
    }
}
