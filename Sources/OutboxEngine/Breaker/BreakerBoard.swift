import FlexChargeAPI
import Foundation
import LibPQ
import Logging
import Synchronization

/// A worker's side of the shared circuit breakers: what it knows of them (re-read every
/// `refreshInterval`, and updated at once by its own reports), the outcomes it reports, the events
/// it gives back while a breaker holds them, and the probe it makes when a breaker's time comes
/// (from its refresh loop, so a breaker closes even when none of its events is due; or when a call
/// slot meets an event of a breaker whose probe is due). Every worker may try; the
/// compare-and-set lets one probe go per breaker.
///
/// Nothing is written while FlexCharge is healthy: a success is reported only when its breaker is
/// counting failures. It uses its own connection (`breaker`).
final class BreakerBoard: Sendable {
    let policy: BreakerPolicy
    private let worker: String
    /// Its connection; the rate limiter (``RateLimiter``) shares it.
    let session: PGSession
    private let store = BreakerStore()
    private let clients: [String: FlexChargeClient]
    private let credentials: CredentialCache
    private let logger: Logger
    private let known = Mutex<[BreakerKey: CircuitBreaker]>([:])
    /// Breakers this worker is probing from its refresh loop (at most one probe task each).
    private let probing = Mutex<Set<BreakerKey>>([])

    init(
        policy: BreakerPolicy, worker: String, database: PGConfiguration, clients: [String: FlexChargeClient],
        credentials: CredentialCache, logger: Logger
    ) {
        self.policy = policy
        self.worker = worker
        self.session = PGSession(configuration: database, name: "breaker")
        self.clients = clients
        self.credentials = credentials
        self.logger = logger
    }

    /// Re-reads the breakers and publishes the gauge every `refreshInterval` (two statements on a
    /// table of one row per merchant and environment that ever failed), until cancelled.
    func run() async {
        guard policy.enabled else { return }
        await withDiscardingTaskGroup { probes in
            while !Task.isCancelled {
                do {
                    let active = try await store.active(on: session)
                    known.withLock { $0 = active }
                    BreakerMetrics.publish(try await store.counts(on: session))
                    let now = Date()
                    for (key, breaker) in active where breaker.mayProbe(at: now) {
                        guard probing.withLock({ $0.insert(key).inserted }) else { continue }
                        probes.addTask {
                            await self.probeDue(key)
                            _ = self.probing.withLock { $0.remove(key) }
                        }
                    }
                } catch {
                    logger.warning("could not read the circuit breakers", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: policy.refreshInterval)
            }
            probes.cancelAll()
        }
        await session.close()
    }

    /// A probe from the refresh loop, with the merchant's stored API credentials.
    private func probeDue(_ key: BreakerKey) async {
        do {
            let sealed = try await SealedCredentials.load(.api, merchantID: key.merchantID, environment: key.environment, on: session).first
            _ = await probe(key, sealed: sealed, orderID: nil)
        } catch {
            logger.warning("could not read credentials for a breaker's probe", metadata: ["breaker": "\(key)", "error": "\(error)"])
        }
    }

    /// The breaker as this worker last saw it.
    func breaker(_ key: BreakerKey) -> CircuitBreaker? { known.withLock { $0[key] } }

    /// True when the event may be delivered now. When its breaker holds it, the event is given
    /// back (no attempt counted, due at the next probe time) and this returns false; when the
    /// breaker's probe time has come, this worker tries to make the one probe call first.
    func admit(_ event: ClaimedEvent) async -> Bool {
        guard policy.enabled else { return true }
        let key = BreakerKey(merchantID: event.merchantID, environment: event.environment)
        guard var breaker = breaker(key), breaker.isHolding(at: Date()) else { return true }
        if breaker.mayProbe(at: Date()) {
            switch await probe(key, sealed: event.credentials, orderID: event.orderID) {
            case .some(let after): breaker = after
            case .none: return true  // could not probe (no credentials): let the event fail on its own
            }
            if !breaker.isHolding(at: Date()) { return true }
        }
        let until = breaker.holdUntil(at: Date())
        let reason = "held by the circuit breaker of \(key) (\(breaker.phase.rawValue) since \(Self.iso(breaker.openedAt))): not sent, no attempt counted; next try at \(Self.iso(until))"
        await giveBack(event, until: until, reason: reason, errorClass: "breaker")
        return false
    }

    /// The one path that gives back an event held before any call (by a breaker here, for want of a
    /// rate-limit token in ``RateLimiter``): pending again at `until`, no attempt counted
    /// (``BreakerStore/holdBack(_:worker:until:reason:errorClass:on:)``).
    func giveBack(_ event: ClaimedEvent, until: Date, reason: String, errorClass: String) async {
        do {
            try await store.holdBack(event.id, worker: worker, until: until, reason: reason, errorClass: errorClass, on: session)
        } catch {
            // Its lease will expire and the rescue will look it up: safe, only slower.
            logger.warning("could not give back a held event", metadata: [
                "event_id": "\(event.id)", "held_by": "\(errorClass)", "error": "\(error)"])
        }
    }

    /// Reports how a call went (see ``BreakerSignal``). Writes only when it can change the breaker.
    func observe(_ event: ClaimedEvent, _ completion: Completion) async {
        guard policy.enabled, !Task.isCancelled else { return }
        let key = BreakerKey(merchantID: event.merchantID, environment: event.environment)
        let current = breaker(key) ?? CircuitBreaker()
        let input: CircuitBreaker.Input
        switch BreakerSignal.of(completion) {
        case .neutral: return
        case .up: input = .succeeded
        case .down(let reason): input = .failed(reason: reason)
        }
        // Cheap local check first: nothing to write for a success of a quiet breaker, or for
        // anything while it is open (the probe decides).
        guard current.applying(input, at: Date(), policy: policy) != nil else { return }
        await apply(input, to: key)
    }

    /// Claims the probe (one worker wins across all), makes one read-only call (an order search,
    /// one result, with the merchant's credentials), and records the result. Returns the breaker
    /// afterwards, or nil when no probe can be made (no client or credentials for it: the breaker
    /// is left as it is, and the events fail on their own as a configuration problem).
    private func probe(_ key: BreakerKey, sealed: SealedCredentials?, orderID: String?) async -> CircuitBreaker? {
        guard let client = clients[key.environment], let sealed, let merchant = try? credentials.credentials(for: sealed) else {
            return nil
        }
        let owner = "\(worker)#\(UUID().uuidString.prefix(8).lowercased())"
        guard let claimed = await apply(.probeStarted(owner: owner), to: key) else { return breaker(key) }
        guard claimed.phase == .halfOpen, claimed.probeOwner == owner else { return claimed }
        // The probe ends well within its lease (a token request and a search could otherwise take
        // twice the client's timeouts), so no second probe starts while this one is in flight.
        let limit = policy.probeTimeout * 0.75
        let result = await withTaskGroup(of: CircuitBreaker.Input?.self) { group -> CircuitBreaker.Input in
            group.addTask { await Self.probeCall(client, merchant: merchant, orderID: orderID, owner: owner) }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .probeFailed(owner: owner, reason: "probe: no answer within \(limit)")
        }
        let after = await apply(result, to: key) ?? claimed
        if after.phase == .closed {
            logger.notice("circuit breaker closed: FlexCharge answered the probe", metadata: ["breaker": "\(key)"])
        }
        return after
    }

    /// The probe's call: an order search with one result. Any answer but a 5xx says FlexCharge is up
    /// (a 4xx is about the request, not an outage).
    private static func probeCall(
        _ client: FlexChargeClient, merchant: MerchantCredentials, orderID: String?, owner: String
    ) async -> CircuitBreaker.Input {
        let since = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
        do {
            _ = try await client.orders(
                query: OrdersQuery(from: since, mid: merchant.mid, pageSize: 1, pageNumber: 1, query: orderID),
                credentials: merchant)
            return .probeSucceeded(owner: owner)
        } catch let error as FlexChargeError {
            let status = error.httpStatus ?? 0
            let down = error.failureClass != .permanent && (error.httpStatus == nil || (500...599).contains(status))
            return down ? .probeFailed(owner: owner, reason: "probe: \(error.description.prefix(200))")
                        : .probeSucceeded(owner: owner)
        } catch {
            return .probeFailed(owner: owner, reason: "probe did not finish")
        }
    }

    @discardableResult
    private func apply(_ input: CircuitBreaker.Input, to key: BreakerKey) async -> CircuitBreaker? {
        do {
            let (after, changed) = try await store.apply(input, to: key, policy: policy, on: session)
            known.withLock { $0[key] = after }
            if changed, after.phase == .open, case .failed = input {
                logger.warning("circuit breaker opened: FlexCharge is failing; events of this merchant and environment wait without spending attempts", metadata: [
                    "breaker": "\(key)", "failures": "\(after.failures)", "retry_at": "\(Self.iso(after.retryAt))",
                    "last_error": "\(after.lastError ?? "")",
                ])
            }
            return after
        } catch {
            logger.warning("could not write the circuit breaker", metadata: ["breaker": "\(key)", "error": "\(error)"])
            return nil
        }
    }

    private static func iso(_ date: Date?) -> String {
        date.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
    }
}
