import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The `/_sandbox/...` control API (not part of FlexCharge): ledger, reset, clock, faults, forced outcomes,
/// planted orders and a webhook sink.
struct ControlRoutes: Sendable {
    let sandbox: FlexChargeSandbox

    /// `POST /_sandbox/clock` body.
    struct ClockAdvance: Decodable { var advanceSeconds: Int }
    /// `POST /_sandbox/faults` body and `GET /_sandbox/faults` answer.
    struct FaultRules: Codable, ResponseEncodable { var rules: [FaultRule] }
    /// A small JSON answer.
    struct Acknowledgement: ResponseEncodable { var ok: Bool; var id: String?; var now: String? }
    /// A webhook as received by the sink (body in base64).
    struct SinkEntry: ResponseEncodable { var headers: [String: String]; var bodyBase64: String }

    func register(on router: Router<SandboxRequestContext>) {
        let group = router.group("_sandbox")
        group.get("ledger") { _, _ in sandbox.ledger() }
        group.post("reset") { _, _ in
            sandbox.reset()
            return Acknowledgement(ok: true)
        }
        group.post("clock") { request, context in
            let advance = try await request.decode(as: ClockAdvance.self, context: context)
            sandbox.advanceClock(by: .seconds(advance.advanceSeconds))
            return Acknowledgement(ok: true, now: SandboxState.iso(sandbox.now()))
        }
        group.get("faults") { _, _ in FaultRules(rules: sandbox.faults()) }
        group.post("faults") { request, context in
            let rules = try await request.decode(as: FaultRules.self, context: context)
            sandbox.setFaults(rules.rules)
            return rules
        }
        group.post("orders") { request, context in
            let plant = try await request.decode(as: SandboxOrderPlant.self, context: context)
            return Acknowledgement(ok: true, id: sandbox.plantOrder(plant))
        }
        group.post("orders/:id/:action") { _, context in
            let id = try context.parameters.require("id")
            let done: Bool
            switch try context.parameters.require("action") {
            case "complete": done = sandbox.completeOrder(id: id)
            case "expire": done = sandbox.expireOrder(id: id)
            case "chargeback": done = sandbox.trigger(event: "payment.chargeback.received", orderId: id)
            case "challenge-passed": done = sandbox.trigger(event: "challenge.passed", orderId: id)
            case "challenge-failed": done = sandbox.trigger(event: "challenge.failed", orderId: id)
            default: throw HTTPError(.notFound)
            }
            guard done else { throw HTTPError(.conflict, message: "order unknown or not in a state for this action") }
            return Acknowledgement(ok: true, id: id)
        }
        group.post("webhook-sink") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            if let authority = request.head.authority { headers["host"] = authority }
            sandbox.webhooks.receive(ReceivedWebhook(headers: headers, body: Array(buffer: body)))
            return Response(status: .ok)
        }
        group.get("webhook-sink") { _, _ in
            sandbox.receivedWebhooks().map { SinkEntry(headers: $0.headers, bodyBase64: Data($0.body).base64EncodedString()) }
        }
    }
}

extension SandboxLedger: ResponseEncodable {}
extension FaultRule: ResponseEncodable {}
