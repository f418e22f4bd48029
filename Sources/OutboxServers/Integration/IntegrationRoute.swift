import Hummingbird

/// The routes `serve` answers: the one home of their methods, paths and names. The router registers them
/// from here, and the metrics' `route` label and the log lines name them from here.
enum IntegrationRoute: String, CaseIterable, Sendable {
    /// `POST /webhooks/flexcharge?merchant=<merchant_id>`: FlexCharge's webhooks.
    case webhook
    /// `POST /v1/tokenize`: card tokenization for the gateway.
    case tokenize
    /// `GET /healthz`.
    case healthz

    var method: HTTPRequest.Method {
        switch self {
        case .webhook, .tokenize: .post
        case .healthz: .get
        }
    }

    /// The path, without its leading slash (as the router takes it).
    var path: String {
        switch self {
        case .webhook: "webhooks/flexcharge"
        case .tokenize: "v1/tokenize"
        case .healthz: "healthz"
        }
    }

    /// The route a request's method and path (with its leading slash) name, if any.
    init?(method: HTTPRequest.Method, path: String) {
        guard path.first == "/", let route = Self.allCases.first(where: { $0.method == method && $0.path == path.dropFirst() }) else {
            return nil
        }
        self = route
    }
}
