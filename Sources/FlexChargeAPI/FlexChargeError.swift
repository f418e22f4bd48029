/// A failed FlexCharge call, classified so the caller can decide what to do next.
///
/// The client never decides to retry on its own (except renewing an expired token once); it reports what happened.
/// `description` names the route, class, HTTP status and a server message, and never contains request bodies,
/// credentials, bearer tokens or card data.
public struct FlexChargeError: Error, Sendable, CustomStringConvertible {
    /// What the failure means for the caller.
    public enum FailureClass: String, Sendable, Hashable {
        /// FlexCharge did not act (or asked to be asked again): connect error, reset before any response,
        /// 408, 409 "still in progress", 429, 5xx. Sending the same request again is safe.
        case retryable
        /// FlexCharge refused the request and will refuse it again: 400 with field errors, 401 after one token
        /// renewal, 403, 404, 409 for a reused idempotency key with a different body, bad credentials.
        case permanent
        /// The request was sent and no usable answer came back (timeout, connection closed after sending,
        /// malformed or cut-off body): FlexCharge may have acted. Resolve by reading state or replaying the same
        /// idempotency key.
        case ambiguous
    }

    /// What the failure means for the caller.
    public let failureClass: FailureClass
    /// The API route that failed, e.g. `POST /evaluate`.
    public let route: String
    /// The HTTP status, when a response head arrived.
    public let httpStatus: Int?
    /// The delay asked for by a `Retry-After` header (429, 503), seconds or HTTP-date.
    public let retryAfter: Duration?
    /// Validation messages per field, from either the flat ModelState map or the nested `errors` object.
    public let fieldErrors: [String: [String]]
    /// A short, safe, human-readable explanation.
    public let message: String
    /// Time spent on the failing HTTP exchange, when one took place.
    public let latency: Duration?
    /// The raw response body, when one arrived (for the attempt ledger; never part of `description`).
    public let responseBody: [UInt8]?

    /// Creates an error; mostly used by the client itself.
    public init(
        failureClass: FailureClass,
        route: String,
        httpStatus: Int? = nil,
        retryAfter: Duration? = nil,
        fieldErrors: [String: [String]] = [:],
        message: String,
        latency: Duration? = nil,
        responseBody: [UInt8]? = nil
    ) {
        self.failureClass = failureClass
        self.route = route
        self.httpStatus = httpStatus
        self.retryAfter = retryAfter
        self.fieldErrors = fieldErrors
        self.message = message
        self.latency = latency
        self.responseBody = responseBody
    }

    public var description: String {
        var text = "FlexCharge \(route) failed (\(failureClass.rawValue)"
        if let httpStatus { text += ", HTTP \(httpStatus)" }
        if let retryAfter { text += ", retry after \(retryAfter)" }
        text += "): \(message)"
        if !fieldErrors.isEmpty {
            text += " [" + fieldErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.joined(separator: "; "))" }
                .joined(separator: ", ") + "]"
        }
        return text
    }

    /// The class of a completed HTTP exchange with a non-success status.
    static func classify(httpStatus: Int, message: String) -> FailureClass {
        switch httpStatus {
        case 408, 429, 500...599: return .retryable
        case 409: return message.lowercased().contains("different") ? .permanent : .retryable
        default: return .permanent
        }
    }
}
