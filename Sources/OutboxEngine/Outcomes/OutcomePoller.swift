import FlexChargeAPI
import Foundation
import LibPQ
import Logging

/// The lookup fallback: evaluates awaiting their outcome (SUBMITTED, CHALLENGE, CAPTUREREQUIRED)
/// are looked up with `GET /orders/{id}` on a backoff schedule (``OutcomePolling``) until the order
/// is final, so a lost webhook never leaves an order pending forever. Runs inside every worker;
/// workers share the lookups through `FOR UPDATE SKIP LOCKED` like the rest of the queue.
struct OutcomePoller: Sendable {
    let session: PGSession
    let clients: [String: FlexChargeClient]
    let credentials: CredentialCache
    let polling: OutcomePolling
    let worker: String
    let logger: Logger
    private let store = OutcomeStore()

    init(session: PGSession, clients: [String: FlexChargeClient], credentials: CredentialCache, polling: OutcomePolling,
         worker: String, logger: Logger) {
        self.session = session
        self.clients = clients
        self.credentials = credentials
        self.polling = polling
        self.worker = worker
        self.logger = logger
    }

    func run() async {
        while !Task.isCancelled {
            var claimed = 0
            do {
                claimed = try await pollOnce()
            } catch {
                logger.warning("outcome lookups failed", metadata: ["error": "\(error)"])
            }
            if claimed < polling.batchSize {
                try? await Task.sleep(for: polling.interval)
            }
        }
    }

    /// Claims due lookups, runs them concurrently, records them. Returns how many were claimed.
    @discardableResult
    func pollOnce() async throws -> Int {
        let due = try await store.claimDue(on: session, limit: polling.batchSize, firstDelay: polling.firstDelay,
                                           lease: polling.lease)
        guard !due.isEmpty else { return 0 }
        let lookups = await withTaskGroup(of: OutcomeLookup.self) { group in
            for outcome in due { group.addTask { await self.lookUp(outcome) } }
            var all: [OutcomeLookup] = []
            for await lookup in group { all.append(lookup) }
            return all
        }
        for lookup in lookups {
            let written = try await store.record(lookup, worker: worker, on: session)
            var metadata: Logger.Metadata = ["event_id": "\(lookup.eventID)", "result": "\(lookup.result)"]
            if let error = lookup.error { metadata["error"] = "\(error)" }
            if !written { metadata["note"] = "settled meanwhile (webhook)" }
            logger.debug("outcome looked up", metadata: metadata)
        }
        return due.count
    }

    /// One `GET /orders/{id}` and what it means.
    func lookUp(_ outcome: DueOutcome) async -> OutcomeLookup {
        let started = Date()
        var lookup = OutcomeLookup(eventID: outcome.eventID, result: .dead, startedAt: started, finishedAt: started)
        let polls = outcome.polls + 1
        let pendingDelay = polling.delay(afterPoll: polls)
        guard let client = clients[outcome.environment] else {
            lookup.failureClass = "config"
            lookup.error = "no FlexCharge URL is configured for \(outcome.environment)"
            return finish(lookup, outcome: outcome, expiry: outcome.payloadExpiry, decision: nil, delay: pendingDelay)
        }
        let merchant: MerchantCredentials
        do {
            merchant = try credentials.credentials(outcome.credentials, merchantID: outcome.merchantID, environment: outcome.environment)
        } catch {
            lookup.failureClass = "config"
            lookup.error = "\(error)"
            return finish(lookup, outcome: outcome, expiry: outcome.payloadExpiry, decision: nil, delay: pendingDelay)
        }
        do {
            let answer = try await client.order(id: outcome.orderSessionKey, credentials: merchant)
            lookup.httpStatus = answer.httpStatus
            let expiry = OutcomeRules.date(answer.body.expiryDate) ?? outcome.payloadExpiry
            // A status not understood changes nothing: looked up again later.
            let decision = OrderStatus(of: answer.body).map {
                Decision.settled(by: $0, known: outcome.decision, pastExpiry: expiry.map { $0 <= Date() } ?? false)
            }
            if let decision, decision.isFinal {
                lookup.result = .final(decision: decision.rawValue)
                lookup.finishedAt = Date()
                return lookup
            }
            return finish(lookup, outcome: outcome, expiry: expiry, decision: decision?.rawValue, delay: pendingDelay,
                          status: answer.body.statusName)
        } catch let error as FlexChargeError {
            lookup.httpStatus = error.httpStatus
            lookup.failureClass = error.failureClass.rawValue
            lookup.error = "order lookup failed: \(error.message)"
            let delay = max(pendingDelay, error.retryAfter ?? .zero)
            return finish(lookup, outcome: outcome, expiry: outcome.payloadExpiry, decision: nil, delay: delay)
        } catch {
            lookup.failureClass = "ambiguous"
            lookup.error = "order lookup did not finish"
            return finish(lookup, outcome: outcome, expiry: outcome.payloadExpiry, decision: nil, delay: pendingDelay)
        }
    }

    /// The latest expiry believed: a year after the evaluate's answer.
    static let longestExpiry: TimeInterval = 366 * 86_400

    /// Not final: look again later, unless the order is past its expiry (plus grace) or too old.
    private func finish(
        _ lookup: OutcomeLookup, outcome: DueOutcome, expiry: Date?, decision: String?, delay: Duration,
        status: String? = nil
    ) -> OutcomeLookup {
        var lookup = lookup
        let now = Date()
        lookup.finishedAt = now
        // An expiry from FlexCharge's answer is outside input: one past a year after the answer (e.g. 9999-12-31)
        // counts as a year, so an order is never looked up forever.
        let latestExpiry = outcome.answeredAt.addingTimeInterval(Self.longestExpiry)
        let deadline = expiry.map { min($0, latestExpiry).addingTimeInterval(polling.expiryGrace.seconds) }
            ?? outcome.answeredAt.addingTimeInterval(polling.maxAge.seconds)
        if now >= deadline {
            lookup.result = .dead
            lookup.failureClass = lookup.failureClass ?? "permanent"
            let last = status.map { "last status \($0)" } ?? (lookup.error ?? "no answer")
            lookup.error = expiry != nil
                ? "no final outcome from FlexCharge by the order's expiryDateUtc (\(last)); an operator decides"
                : "no final outcome from FlexCharge within \(polling.maxAge.components.seconds) s (\(last)); an operator decides"
            return lookup
        }
        lookup.result = .pending(decision: decision, delay: delay)
        return lookup
    }
}
