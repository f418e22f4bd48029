import FlexChargeAPI
import Foundation
import Logging

/// Makes the FlexCharge call for one claimed event and decides what happens to it next.
///
/// The rules that keep money safe live here:
/// - every attempt of an event sends the event's own idempotency key where the call takes one
///   (evaluate, cancel, external cancel, capture; refunds and transmits take none);
/// - an event whose earlier attempt may have reached FlexCharge (ambiguous failure, lease expired
///   under a dead worker, an operator's requeue after it was sent; for a refund also a 500, 502 or
///   504) is looked up before anything is sent again: evaluates by the gateway's order id,
///   follow-ups by their FlexCharge order (``FollowUpVerdict``); transmits are sent again;
/// - an evaluate is never re-sent once FlexCharge's idempotency window for its key has passed:
///   it is looked up, and if FlexCharge has no such order it goes `dead` for an operator;
/// - while FlexCharge fails for a merchant and environment (its circuit breaker, ``BreakerBoard``,
///   is open) nothing is sent or looked up for it: ``admit(_:)`` gives the event back without
///   counting an attempt. Which lookup or send comes next is unchanged by the hold.
struct EventDelivery: Sendable {
    let clients: [String: FlexChargeClient]
    let credentials: CredentialCache
    let configuration: WorkerConfiguration
    let logger: Logger
    /// The shared circuit breakers (migrations/0013): told how each call went, and asked before a
    /// call whether the event's breaker holds it. `nil`: no breaker.
    var breakers: BreakerBoard? = nil
    /// The shared rate limit per merchant and environment (migrations/0020). `nil`: no limit.
    var rateLimiter: RateLimiter? = nil

    /// True when the event may be delivered now; false when its circuit breaker holds it (FlexCharge
    /// is failing for its merchant and environment) or its merchant's rate limit has no token for
    /// it now: it has been given back without counting an attempt and is due at the breaker's next
    /// probe time or at its turn. Sends and lookups are held alike.
    func admit(_ event: ClaimedEvent) async -> Bool {
        guard await breakers?.admit(event) ?? true else { return false }
        return await rateLimiter?.admit(event) ?? true
    }

    func deliver(_ event: ClaimedEvent) async -> Completion {
        let completion = await deliverUnobserved(event)
        await breakers?.observe(event, completion)
        WorkerMetrics.delivered(event, completion)
        return completion
    }

    private func deliverUnobserved(_ event: ClaimedEvent) async -> Completion {
        var completion = Completion(
            eventID: event.id, attempt: event.attempt, action: event.nextAction, environment: event.environment,
            startedAt: Date(), finishedAt: Date(), outcome: .failed)
        guard let client = clients[event.environment] else {
            return completion.finished(.failed, class: "config", error: "no FlexCharge URL is configured for \(event.environment)")
        }
        let merchant: MerchantCredentials
        do {
            merchant = try credentials.credentials(for: event)
        } catch {
            return completion.finished(.failed, class: "config", error: error.description)
        }
        if event.kind == .evaluate && event.nextAction == .send && windowHasPassed(for: event) {
            completion.action = .lookup
        }
        if completion.action == .lookup && event.kind == .evaluate {
            return await lookUpEvaluate(event, client: client, credentials: merchant, completion: completion)
        }
        if completion.action == .lookup && event.kind.isLookedUpAfterAmbiguity {
            return await lookUpFollowUp(event, client: client, credentials: merchant, completion: completion)
        }
        completion.action = .send
        return await send(event, client: client, credentials: merchant, completion: completion)
    }

    /// True once FlexCharge may have forgotten the key: resending could create a second order
    /// (``RetryPolicy/idempotencyWindowHasPassed(firstSentAt:now:)``).
    func windowHasPassed(for event: ClaimedEvent) -> Bool {
        configuration.retryPolicy.idempotencyWindowHasPassed(firstSentAt: event.firstClaimedAt)
    }

    private func send(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async -> Completion {
        var completion = completion
        let body = event.requestBody
        do {
            switch event.kind {
            case .transmit:
                let answer = try await client.transmit(body: body, credentials: credentials)
                completion.httpStatus = answer.httpStatus
                completion.transactionKey = answer.body.transmitId
                if answer.body.success == false {
                    return completion.finished(.failed, class: "permanent", error: "FlexCharge answered success=false to /transmit")
                }
                return completion.finished(.succeeded)
            case .evaluate:
                let answer = try await client.evaluate(body: body, credentials: credentials)
                completion.httpStatus = answer.httpStatus
                return completion.decided(
                    answer: answer.body.status, orderSessionKey: answer.body.orderSessionKey ?? answer.body.orderId)
            case .cancel, .refund, .externalCancel, .capture:
                return try await sendFollowUp(event, client: client, credentials: credentials, completion: completion)
            }
        } catch let error as FlexChargeError {
            return failed(event, error, completion: completion)
        } catch {
            // Cancelled by shutdown, or anything else: the request may have left.
            return retry(event, class: "ambiguous", error: "the call did not finish (\(type(of: error)))", retryAfter: nil,
                         completion: completion, ambiguous: true)
        }
    }

    private func sendFollowUp(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async throws -> Completion {
        var completion = completion
        // The body comes from the one home of request bodies (flexcharge.request_body, via the claim).
        let body = event.requestBody
        let orderSessionKey = event.orderSessionKey
        switch event.kind {
        case .cancel where orderSessionKey != nil:
            let answer = try await client.cancel(orderId: orderSessionKey!, body: body, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            completion.orderSessionKey = orderSessionKey
            return completion.finished(.succeeded)
        case .cancel, .externalCancel:
            // No FlexCharge id is known (the evaluate timed out): cancel by the gateway's order id.
            let answer = try await client.externalCancel(externalOrderId: event.orderID, body: body, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            return completion.finished(.succeeded)
        case .refund:
            guard let orderSessionKey else {
                return completion.finished(.failed, class: "permanent",
                                           error: "no FlexCharge order is known for this order: evaluate it first or put orderSessionKey in the payload")
            }
            let answer = try await client.refund(orderId: orderSessionKey, body: body, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            completion.orderSessionKey = orderSessionKey
            completion.decision = answer.body.status
            if answer.body.success == false || answer.body.status?.uppercased() == "FAILED" {
                let code = answer.body.responseCode.map { " (code \($0))" } ?? ""
                return completion.finished(.failed, class: "permanent",
                                           error: "refund refused\(code): \(answer.body.responseMessage ?? "no message")")
            }
            return completion.finished(.succeeded)
        case .capture:
            guard let orderSessionKey else {
                return completion.finished(.failed, class: "permanent",
                                           error: "no FlexCharge order is known for this order: evaluate it first or put orderSessionKey in the payload")
            }
            guard event.currency != nil else {
                return completion.finished(.failed, class: "permanent",
                                           error: "no currency is known for this capture: put currency in the payload")
            }
            let answer = try await client.capture(body: body, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            completion.orderSessionKey = orderSessionKey
            let status = (answer.body.status ?? answer.body.captureStatus)?.uppercased()
            completion.decision = status
            if answer.body.success == false || status == "FAILED" {
                return completion.finished(.failed, class: "permanent", error: "capture refused: \(answer.body.result ?? "no message")")
            }
            return completion.finished(.succeeded)
        case .transmit, .evaluate:
            return completion.finished(.failed, class: "config", error: "\(event.kind.rawValue) is not a follow-up")
        }
    }

    /// Resolves a follow-up whose earlier call may have reached FlexCharge: reads its FlexCharge order
    /// (or searches by the gateway's order id when no FlexCharge id is known) and lets
    /// ``FollowUpVerdict`` decide: applied, safe to send again, impossible, or left to an operator.
    private func lookUpFollowUp(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async -> Completion {
        var completion = completion
        let orderSessionKey = event.orderSessionKey
        do {
            let order: Order?
            if event.kind != .externalCancel, let orderSessionKey {
                do {
                    order = try await ReadRetry.run { try await client.order(id: orderSessionKey, credentials: credentials).body }
                } catch let error as FlexChargeError where error.httpStatus == 404 {
                    order = nil
                }
            } else {
                order = try await findOrder(event, client: client, credentials: credentials)
            }
            completion.httpStatus = 200
            completion.orderSessionKey = order?.id ?? orderSessionKey
            switch FollowUpVerdict.judge(event.kind, order: order, amountCents: event.amountCents,
                                         refundedBeforeCents: event.refundedBeforeCents) {
            case .applied(let decision):
                completion.decision = decision
                return completion.finished(.succeeded, error: "the earlier call was applied at FlexCharge (found by lookup); not sent again")
            case .notApplied:
                return sendAgain(event, completion: completion, found: "not applied at FlexCharge")
            case .impossible(let reason):
                return completion.finished(.failed, class: "permanent", error: reason)
            case .unresolved(let reason):
                logger.warning("follow-up left to an operator", metadata: [
                    "event": "\(event.id)", "kind": "\(event.kind.rawValue)", "merchant": "\(event.merchantID)"])
                return completion.finished(.dead, class: "unresolved", error: reason)
            }
        } catch let unresolved as UnresolvedLookup {
            return unresolved.park(event, completion: completion, logger: logger)
        } catch let error as FlexChargeError {
            return lookupFailed(event, error, completion: completion)
        } catch {
            return retry(event, class: "ambiguous", error: "order lookup did not finish", retryAfter: nil,
                         completion: completion, ambiguous: true)
        }
    }

    /// A failed lookup: refused for good (failed), or tried again later, still as a lookup.
    private func lookupFailed(_ event: ClaimedEvent, _ error: FlexChargeError, completion: Completion) -> Completion {
        if error.failureClass == .permanent {
            return completion.finished(.failed, class: "permanent", error: "order lookup refused: \(error.message)",
                                       httpStatus: error.httpStatus)
        }
        return retry(event, class: error.failureClass.rawValue, error: "order lookup failed: \(error.message)",
                     retryAfter: error.retryAfter, completion: completion, ambiguous: true, httpStatus: error.httpStatus)
    }

    /// Resolves an evaluate whose earlier attempt may have reached FlexCharge: finds the order by
    /// the gateway's order id instead of sending again.
    private func lookUpEvaluate(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async -> Completion {
        var completion = completion
        do {
            let found = try await findOrder(event, client: client, credentials: credentials)
            completion.httpStatus = 200
            if let order = found {
                // We never learned the answer; a status not understood is looked up again later.
                let pastExpiry = OutcomeRules.date(order.expiryDate).map { $0 <= Date() } ?? false
                let decision = OrderStatus(of: order).map { Decision.settled(by: $0, known: nil, pastExpiry: pastExpiry) }
                return completion.decided(decision ?? .submitted, orderSessionKey: order.id)
            }
            if windowHasPassed(for: event) {
                return completion.finished(
                    .dead, class: "permanent",
                    error: "FlexCharge has no order for it and its idempotency window has passed: sending again could charge twice; an operator decides")
            }
            // FlexCharge never created the order: sending again under the same key is safe.
            return sendAgain(event, completion: completion, found: "FlexCharge has no order for it")
        } catch let unresolved as UnresolvedLookup {
            return unresolved.park(event, completion: completion, logger: logger)
        } catch let error as FlexChargeError {
            return lookupFailed(event, error, completion: completion)
        } catch {
            return retry(event, class: "ambiguous", error: "order lookup did not finish", retryAfter: nil,
                         completion: completion, ambiguous: true)
        }
    }

    /// A lookup found that FlexCharge never acted on the earlier call (`found` says how): the next attempt sends
    /// again, at once (with the same idempotency key where the kind has one), unless the lookup went past the attempt
    /// limit: then the event is dead, never sent past it (``RetryPolicy/isPastTheLimit(_:)``).
    private func sendAgain(_ event: ClaimedEvent, completion: Completion, found: String) -> Completion {
        if configuration.retryPolicy.isPastTheLimit(event.attempt) {
            return completion.finished(.dead, class: "retryable", error: "\(found) (found by lookup); not sent again (attempts exhausted)")
        }
        var completion = completion
        completion.error = "\(found); sending again\(event.kind.carriesIdempotencyKey ? " with the same idempotency key" : "")"
        completion.finishedAt = Date()
        completion.outcome = .retry(at: Date(), action: .send)
        return completion
    }

    /// Finds the order an earlier attempt may have created by several guesses, none trusted alone
    /// (``OrderLookup``): the order, `nil` when FlexCharge certainly has none, or ``UnresolvedLookup``
    /// thrown when no guess settles it (the event is parked for an operator, never re-sent).
    private func findOrder(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials
    ) async throws -> Order? {
        switch try await client.findOrder(OrderIdentity(event: event), credentials: credentials) {
        case .found(let order): return order
        case .notFound: return nil
        case .unresolved(let reason): throw UnresolvedLookup(reason: reason)
        }
    }

    private func failed(_ event: ClaimedEvent, _ error: FlexChargeError, completion: Completion) -> Completion {
        switch error.failureClass {
        case .permanent:
            var completion = completion
            completion.fieldErrors = error.fieldErrors.isEmpty ? nil : Self.json(error.fieldErrors)
            return completion.finished(.failed, class: "permanent", error: error.message, httpStatus: error.httpStatus)
        case .retryable where !event.kind.carriesIdempotencyKey && event.kind.isLookedUpAfterAmbiguity
                              && [500, 502, 504].contains(error.httpStatus ?? 0):
            // A refund has no idempotency key: after an answer that does not prove FlexCharge did nothing,
            // it is looked up before it is sent again.
            return retry(event, class: "ambiguous", error: error.message, retryAfter: error.retryAfter,
                         completion: completion, ambiguous: true, httpStatus: error.httpStatus)
        case .retryable:
            return retry(event, class: "retryable", error: error.message, retryAfter: error.retryAfter,
                         completion: completion, ambiguous: false, httpStatus: error.httpStatus)
        case .ambiguous:
            return retry(event, class: "ambiguous", error: error.message, retryAfter: error.retryAfter,
                         completion: completion, ambiguous: true, httpStatus: error.httpStatus)
        }
    }

    /// Schedules the next attempt with backoff, or declares the event dead when attempts are
    /// exhausted. After an ambiguous call the next attempt is a lookup (every kind but transmit).
    private func retry(
        _ event: ClaimedEvent, class failureClass: String, error: String, retryAfter: Duration?,
        completion: Completion, ambiguous: Bool, httpStatus: Int? = nil
    ) -> Completion {
        var completion = completion
        completion.httpStatus = httpStatus
        // Money rule: after a call that may have reached FlexCharge, ask what happened before giving up. A lookup
        // sends nothing, so a few go past the attempt limit (RetryPolicy.lookupsPastTheLimit); the event is never
        // sent again past it (the lookups' "not there, send again" ends it dead instead).
        let looksUpNext = ambiguous && event.kind.isLookedUpAfterAmbiguity
        if configuration.retryPolicy.isExhausted(afterAttempt: event.attempt)
            && !(looksUpNext && configuration.retryPolicy.mayLookUp(afterAttempt: event.attempt)) {
            return completion.finished(.dead, class: failureClass, error: "\(error) (attempts exhausted)", httpStatus: httpStatus)
        }
        var delay = configuration.retryPolicy.delay(afterAttempt: event.attempt, retryAfter: retryAfter)
        let next: ClaimedEvent.NextAction = looksUpNext ? .lookup : .send
        if next == .lookup && !event.kind.carriesIdempotencyKey {
            delay = max(delay, configuration.refundSettleTime)  // let a refund still in flight land first
        }
        return completion.finished(
            .retry(at: Date().addingTimeInterval(delay.seconds), action: next), class: failureClass, error: error,
            httpStatus: httpStatus)
    }

    static func json(_ fieldErrors: [String: [String]]) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(fieldErrors)).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension Completion {
    /// Sets the outcome and the finish time.
    fileprivate func finished(
        _ outcome: Outcome, class failureClass: String? = nil, error: String? = nil, httpStatus: Int? = nil
    ) -> Completion {
        var copy = self
        copy.outcome = outcome
        copy.failureClass = failureClass
        copy.error = error ?? copy.error
        if let httpStatus { copy.httpStatus = httpStatus }
        copy.finishedAt = Date()
        return copy
    }

    /// An evaluate's answer (``Decision/init(evaluateStatus:)``): final decisions succeed, the rest
    /// await their outcome; a status not understood awaits it too, without a decision, so the
    /// outcome poller asks FlexCharge what it meant.
    fileprivate func decided(answer status: String?, orderSessionKey: String?) -> Completion {
        if let decision = Decision(evaluateStatus: status) { return decided(decision, orderSessionKey: orderSessionKey) }
        var copy = self
        copy.orderSessionKey = orderSessionKey
        copy.error = "FlexCharge answered the evaluate with a status not understood (\(SafeText.stored(status ?? "none", limit: 40))); its order is looked up"
        return copy.finished(.awaitingOutcome)
    }

    /// An evaluate's decision, found by answer or lookup, with the event state it brings.
    fileprivate func decided(_ decision: Decision, orderSessionKey: String?) -> Completion {
        var copy = self
        copy.decision = decision.rawValue
        copy.orderSessionKey = orderSessionKey
        return copy.finished(decision.isFinal ? .succeeded : .awaitingOutcome)
    }
}
