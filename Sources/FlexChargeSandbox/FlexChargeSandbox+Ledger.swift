import Foundation
import Synchronization

/// One received request as the sandbox keeps it: unformatted, and with its reply's metadata but not its body, so
/// that recording costs no formatting and little memory (the ledger is written on every request, read rarely).
struct ReceivedRequest: Sendable {
    var time: Date
    var route: APIRoute
    var reply: SandboxReply?
    var httpStatus: Int
    var processed: Bool
    var fault: FaultRule.Kind?

    /// The public ledger entry.
    var entry: SandboxLedger.Request {
        .init(time: SandboxState.iso(time), route: route.rawValue, mid: reply?.mid, merchantOrderId: reply?.merchantOrderId,
              idempotencyKey: reply?.idempotencyKey, httpStatus: httpStatus, status: reply?.ledgerStatus,
              orderSessionKey: reply?.orderSessionKey, processed: processed, fault: fault?.rawValue)
    }
}

extension FlexChargeSandbox {
    /// Appends one received request to the ledger.
    func record(_ route: APIRoute, reply: SandboxReply?, httpStatus: Int, processed: Bool, fault: FaultRule.Kind?) {
        let received = ReceivedRequest(time: clock.now(), route: route, reply: reply?.withoutBody, httpStatus: httpStatus,
                                       processed: processed, fault: fault)
        state.withLock { $0.receivedRequests.append(received) }
    }

    /// The fault (if any) for a request on `route` (of merchant `mid`, asked only when a rule is
    /// set), and the total delay to apply to it.
    func faultAndDelay(for route: APIRoute, mid: () -> String? = { nil }) -> (FaultRule?, Duration) {
        if !hasFaults.load(ordering: .relaxed), configuration.latency.jitterMilliseconds <= 0 {
            return (nil, .milliseconds(configuration.latency.fixedMilliseconds))
        }
        let requestMid = hasFaults.load(ordering: .relaxed) ? mid() : nil
        return state.withLock { state in
            let fault = state.fault(for: route.rawValue, mid: requestMid)
            var milliseconds = configuration.latency.fixedMilliseconds
            if configuration.latency.jitterMilliseconds > 0 {
                milliseconds += Int.random(in: 0...configuration.latency.jitterMilliseconds, using: &state.random)
            }
            if fault?.kind == .latency { milliseconds += fault?.latencyMilliseconds ?? 0 }
            return (fault, .milliseconds(milliseconds))
        }
    }
}
