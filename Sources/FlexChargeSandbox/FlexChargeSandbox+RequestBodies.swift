import Foundation
import Synchronization

/// One request body as the sandbox received it (kept only while recording, for tests that check
/// what a client sent, field by field).
public struct SandboxRequestBody: Sendable {
    /// `POST /evaluate`, `POST /orders/{id}/refund`, ...
    public let route: String
    /// The `{id}` of the path, when the route has one.
    public let pathID: String?
    public let body: [UInt8]

    /// The body as a JSON object (`nil` when it is not one).
    public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

extension FlexChargeSandbox {
    /// Starts keeping every request body received from now on (until ``reset()``). Off by default:
    /// a benchmark run keeps no bodies.
    public func recordRequestBodies() {
        state.withLock { $0.requestBodies = $0.requestBodies ?? [] }
    }

    /// The bodies received since ``recordRequestBodies()``, in order.
    public func requestBodies() -> [SandboxRequestBody] {
        state.withLock { $0.requestBodies ?? [] }
    }

    /// Keeps one request's body when recording.
    func keepBody(of request: APIRequest) {
        state.withLock { state in
            guard state.requestBodies != nil else { return }
            state.requestBodies!.append(.init(route: request.route.rawValue, pathID: request.pathID, body: request.body))
        }
    }
}
