import Foundation

/// The events this worker is calling FlexCharge for right now, with when each was claimed
/// (for lease renewal) and which are CIT evaluates (for the reserved slots).
actor InFlightEvents {
    private var started: [Int64: (claimedAt: ContinuousClock.Instant, cit: Bool)] = [:]

    var count: Int { started.count }
    var nonCITCount: Int { started.values.filter { !$0.cit }.count }

    /// Registers a claim's events (one call per claim, not per event: this is on the claim loop).
    func add(_ events: [ClaimedEvent]) {
        let now = ContinuousClock.now
        for event in events { started[event.id] = (now, event.lane == "cit_evaluate") }
        WorkerMetrics.inFlight(started.count)
    }

    func remove(_ id: Int64) {
        started[id] = nil
        WorkerMetrics.inFlight(started.count)
    }

    /// Events claimed more than `age` ago: their leases need renewing.
    func older(than age: Duration) -> [Int64] {
        let now = ContinuousClock.now
        return started.filter { now - $0.value.claimedAt >= age }.map(\.key)
    }

    /// Refreshes the renewal clock of events whose lease was just extended.
    func renewed(_ ids: Set<Int64>) {
        for id in ids { started[id]?.claimedAt = ContinuousClock.now }
    }
}
