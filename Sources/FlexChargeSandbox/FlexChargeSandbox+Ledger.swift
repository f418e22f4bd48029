import Synchronization
extension FlexChargeSandbox {
    /// Appends one received request to the ledger.
    func record(_ route: APIRoute, reply: SandboxReply?, httpStatus: Int, processed: Bool, fault: FaultRule.Kind?) {
        state.withLock { state in
            state.ledger.requests.append(.init(
                time: SandboxState.iso(state.now()), route: route.rawValue, mid: reply?.mid,
                merchantOrderId: reply?.merchantOrderId, idempotencyKey: reply?.idempotencyKey, httpStatus: httpStatus,
                status: reply?.ledgerStatus, orderSessionKey: reply?.orderSessionKey, processed: processed,
                fault: fault?.rawValue))
        }
    }

    /// The fault (if any) for a request on `route`, and the total delay to apply to it.
    func faultAndDelay(for route: APIRoute) -> (FaultRule?, Duration) {
        if !hasFaults.load(ordering: .relaxed), configuration.latency.jitterMilliseconds <= 0 {
            return (nil, .milliseconds(configuration.latency.fixedMilliseconds))
        }
        return state.withLock { state in
            let fault = state.fault(for: route.rawValue)
            var milliseconds = configuration.latency.fixedMilliseconds
            if configuration.latency.jitterMilliseconds > 0 {
                milliseconds += Int.random(in: 0...configuration.latency.jitterMilliseconds, using: &state.random)
            }
            if fault?.kind == .latency { milliseconds += fault?.latencyMilliseconds ?? 0 }
            return (fault, .milliseconds(milliseconds))
        }
    }
}
