import Foundation

/// A FlexCharge deployment: its name and the base URL every call is resolved against.
///
/// The path `/v1/` is part of the base URL and stays the same across hosts; only the host is configuration
/// (FlexCharge has published both `flex-charge.com` and `flexfactor.io` hosts).
public struct FlexChargeEnvironment: Sendable, Hashable, CustomStringConvertible {
    /// The kind of deployment.
    public enum Name: String, Sendable, Hashable, Codable {
        /// The isolated test environment (or the project's simulator).
        case sandbox
        /// The live environment that moves money.
        case production
    }

    /// Which deployment this is.
    public let name: Name
    /// The base URL, ending in `/v1/`, e.g. `https://api-sandbox.flex-charge.com/v1/`.
    public let baseURL: String

    /// Creates an environment with an explicit base URL; a missing trailing slash is added.
    public init(name: Name, baseURL: String) {
        self.name = name
        self.baseURL = baseURL.hasSuffix("/") ? baseURL : baseURL + "/"
    }

    /// The public sandbox at `https://api-sandbox.flex-charge.com/v1/`.
    public static let sandbox = FlexChargeEnvironment(name: .sandbox, baseURL: "https://api-sandbox.flex-charge.com/v1/")
    /// The production API at `https://api.flex-charge.com/v1/`.
    public static let production = FlexChargeEnvironment(name: .production, baseURL: "https://api.flex-charge.com/v1/")

    /// A sandbox environment pointing at a local simulator, e.g. `http://127.0.0.1:8080/v1/`.
    public static func local(host: String = "127.0.0.1", port: Int) -> FlexChargeEnvironment {
        FlexChargeEnvironment(name: .sandbox, baseURL: "http://\(host):\(port)/v1/")
    }

    /// The same environment with another host (e.g. `api-sandbox.flexfactor.io`), keeping scheme and path.
    public func withHost(_ host: String) -> FlexChargeEnvironment {
        guard var components = URLComponents(string: baseURL) else { return self }
        components.host = host
        return FlexChargeEnvironment(name: name, baseURL: components.string ?? baseURL)
    }

    /// The absolute URL of an API path such as `orders/123`.
    func url(_ path: String) -> String { baseURL + path }

    public var description: String { "\(name.rawValue) (\(baseURL))" }
}
