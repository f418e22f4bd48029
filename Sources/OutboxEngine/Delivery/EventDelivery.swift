import FlexChargeAPI
import Foundation
import Logging

/// Makes the FlexCharge call for one claimed event and decides what happens to it next.
///
/// The rules that keep money safe live here:
/// - every attempt of an event sends the event's own idempotency key (it comes from the row);
/// - an evaluate whose earlier attempt may have reached FlexCharge (ambiguous failure, lease
///   expired under a dead worker) is looked up before anything is sent again;
/// - an evaluate is never re-sent once FlexCharge's idempotency window for its key has passed:
///   it is looked up, and if FlexCharge has no such order it goes `dead` for an operator.
struct EventDelivery: Sendable {
    let clients: [String: FlexChargeClient]
    let credentials: CredentialCache
    let configuration: WorkerConfiguration
    let logger: Logger

    func deliver(_ event: ClaimedEvent) async -> Completion {
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
            return await lookUp(event, client: client, credentials: merchant, completion: completion)
        }
        completion.action = .send
        return await send(event, client: client, credentials: merchant, completion: completion)
    }

    /// True once FlexCharge may have forgotten the key: resending could create a second order.
    private func windowHasPassed(for event: ClaimedEvent) -> Bool {
        Date().timeIntervalSince(event.firstClaimedAt) >= configuration.idempotencyWindow.seconds
    }

    private func send(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async -> Completion {
        var completion = completion
        let body = Array(event.requestBody.utf8)
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
                    decision: answer.body.status, orderSessionKey: answer.body.orderSessionKey ?? answer.body.orderId)
            case .cancel, .refund, .externalCancel:
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
        let payload = (try? JSONSerialization.jsonObject(with: Data(event.requestBody.utf8))) as? [String: Any] ?? [:]
        let orderSessionKey = event.orderSessionKey ?? payload["orderSessionKey"] as? String
        switch event.kind {
        case .cancel where orderSessionKey != nil:
            let answer = try await client.cancel(orderId: orderSessionKey!, idempotencyKey: event.idempotencyKey, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            completion.orderSessionKey = orderSessionKey
            return completion.finished(.succeeded)
        case .cancel, .externalCancel:
            // No FlexCharge id is known (the evaluate timed out): cancel by the gateway's order id.
            let answer = try await client.externalCancel(
                externalOrderId: event.orderID, idempotencyKey: event.idempotencyKey, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            return completion.finished(.succeeded)
        case .refund:
            guard let orderSessionKey else {
                return completion.finished(.failed, class: "permanent",
                                           error: "no FlexCharge order is known for this order: evaluate it first or put orderSessionKey in the payload")
            }
            let answer = try await client.refund(
                orderId: orderSessionKey, amountCents: Int(event.amountCents ?? 0),
                message: payload["refundMessage"] as? String, credentials: credentials)
            completion.httpStatus = answer.httpStatus
            completion.orderSessionKey = orderSessionKey
            completion.decision = answer.body.status
            if answer.body.success == false || answer.body.status?.uppercased() == "FAILED" {
                let code = answer.body.responseCode.map { " (code \($0))" } ?? ""
                return completion.finished(.failed, class: "permanent",
                                           error: "refund refused\(code): \(answer.body.responseMessage ?? "no message")")
            }
            return completion.finished(.succeeded)
        case .transmit, .evaluate:
            preconditionFailure("not a follow-up")
        }
    }

    /// Resolves an evaluate whose earlier attempt may have reached FlexCharge: finds the order by
    /// the gateway's order id instead of sending again.
    private func lookUp(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials, completion: Completion
    ) async -> Completion {
        var completion = completion
        do {
            let found = try await findOrder(event, client: client, credentials: credentials)
            completion.httpStatus = 200
            if let order = found {
                return completion.decided(decision: Self.decision(for: order), orderSessionKey: order.id)
            }
            if windowHasPassed(for: event) {
                return completion.finished(
                    .dead, class: "permanent",
                    error: "FlexCharge has no order for it and its idempotency window has passed: sending again could charge twice; an operator decides")
            }
            // FlexCharge never created the order: sending again under the same key is safe.
            completion.error = "not found at FlexCharge; sending again with the same idempotency key"
            completion.finishedAt = Date()
            completion.outcome = .retry(at: Date(), action: .send)
            return completion
        } catch let error as FlexChargeError {
            if error.failureClass == .permanent {
                return completion.finished(.failed, class: "permanent", error: "order lookup refused: \(error.message)",
                                           httpStatus: error.httpStatus)
            }
            return retry(event, class: error.failureClass.rawValue, error: "order lookup failed: \(error.message)",
                         retryAfter: error.retryAfter, completion: completion, ambiguous: true, httpStatus: error.httpStatus)
        } catch {
            return retry(event, class: "ambiguous", error: "order lookup did not finish", retryAfter: nil,
                         completion: completion, ambiguous: true)
        }
    }

    /// Searches the merchant's orders placed since the event was written for the gateway's order
    /// id (`query`), paging in case the search matches more than one.
    private func findOrder(
        _ event: ClaimedEvent, client: FlexChargeClient, credentials: MerchantCredentials
    ) async throws -> Order? {
        let from = ISO8601DateFormatter().string(from: event.createdAt.addingTimeInterval(-300))
        var page = 1
        while page <= 50 {
            let answer = try await client.orders(
                query: OrdersQuery(from: from, mid: credentials.mid, pageSize: 100, pageNumber: page, query: event.orderID),
                credentials: credentials)
            if let order = answer.body.items.first(where: { $0.referenceNumber == event.orderID }) { return order }
            guard answer.body.hasNextPage == true else { return nil }
            page += 1
        }
        return nil
    }

    /// FlexCharge's order status as an evaluate decision.
    static func decision(for order: Order) -> String {
        switch order.statusName?.uppercased() ?? "" {
        case "COMPLETED", "RETURNED": "APPROVED"
        case "CANCELLED": "DECLINED"
        case "CAPTUREREQUIRED": "CAPTUREREQUIRED"
        case "DRAFT", "PROCESSING", "ONHOLD": "SUBMITTED"
        case let other: other.isEmpty ? "SUBMITTED" : other
        }
    }

    private func failed(_ event: ClaimedEvent, _ error: FlexChargeError, completion: Completion) -> Completion {
        switch error.failureClass {
        case .permanent:
            var completion = completion
            completion.fieldErrors = error.fieldErrors.isEmpty ? nil : Self.json(error.fieldErrors)
            return completion.finished(.failed, class: "permanent", error: error.message, httpStatus: error.httpStatus)
        case .retryable:
            return retry(event, class: "retryable", error: error.message, retryAfter: error.retryAfter,
                         completion: completion, ambiguous: false, httpStatus: error.httpStatus)
        case .ambiguous:
            return retry(event, class: "ambiguous", error: error.message, retryAfter: error.retryAfter,
                         completion: completion, ambiguous: true, httpStatus: error.httpStatus)
        }
    }

    /// Schedules the next attempt with backoff, or declares the event dead when attempts are
    /// exhausted. After an ambiguous evaluate the next attempt is a lookup.
    private func retry(
        _ event: ClaimedEvent, class failureClass: String, error: String, retryAfter: Duration?,
        completion: Completion, ambiguous: Bool, httpStatus: Int? = nil
    ) -> Completion {
        var completion = completion
        completion.httpStatus = httpStatus
        if configuration.backoff.isExhausted(afterAttempt: event.attempt) {
            return completion.finished(.dead, class: failureClass, error: "\(error) (attempts exhausted)", httpStatus: httpStatus)
        }
        let delay = configuration.backoff.delay(afterAttempt: event.attempt, retryAfter: retryAfter)
        let next: ClaimedEvent.NextAction = (ambiguous && event.kind == .evaluate) ? .lookup : .send
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

    /// An evaluate's answer: final decisions succeed, the rest await their outcome.
    fileprivate func decided(decision: String?, orderSessionKey: String?) -> Completion {
        var copy = self
        copy.decision = decision?.uppercased()
        copy.orderSessionKey = orderSessionKey
        let final: Set<String> = ["APPROVED", "DECLINED"]
        return copy.finished(final.contains(copy.decision ?? "") ? .succeeded : .awaitingOutcome)
    }
}
