import FlexChargeAPI
import Foundation
import Synchronization

/// The behaviour of each API route (HTTP-free: request in, reply out).
extension FlexChargeSandbox {
    /// Answers one API request. `delay` is awaited once, after idempotency registration and before deciding,
    /// so a concurrent duplicate sees the first request "in progress".
    func process(_ request: APIRequest, delay: () async -> Void) async -> SandboxReply {
        switch request.route {
        case .token: return await perform(delay) { issueToken(request.body, state: &$0) }
        case .tokenize:
            let bearerMid = authenticate(request.authorization)
            return await perform(delay) { tokenize(request, bearerMid: bearerMid, state: &$0) }
        default: break
        }
        guard let mid = authenticate(request.authorization) else { return .unauthorized }
        let body = JSONFields(request.body) ?? JSONFields()
        if let bodyMid = body.string("mid"), bodyMid != mid {
            var reply = SandboxReply.problem(403, "Forbidden: mid does not match the token")
            reply.mid = mid
            return reply
        }
        var reply: SandboxReply
        switch request.route {
        case .transmit:
            // Stateless: validated and answered outside the state lock.
            await delay()
            reply = transmit(body)
        case .evaluate:
            reply = await evaluate(body, raw: request.body, mid: mid, delay: delay)
        case .outcome:
            reply = await perform(delay) { state in
                guard let order = state.orders[body.string("orderSessionKey") ?? ""], order.mid == mid else {
                    return .envelope(["status": "NOTFOUND", "success": false])
                }
                return .envelope(["status": order.outcome, "confirmationId": order.confirmationId], orderSessionKey: order.id)
            }
        case .order:
            // A read: copy the order under the lock, write its JSON outside it.
            await delay()
            let found = state.withLock { $0.orders[request.pathID ?? ""] }
            if let order = found, order.mid == mid {
                reply = SandboxReply(status: 200, body: order.json(iso: SandboxState.iso), ledgerStatus: order.status.name, orderSessionKey: order.id)
            } else {
                reply = .problem(404, "Not Found")
            }
        case .orders:
            reply = await perform(delay) { listOrders(request, mid: mid, state: $0) }
        case .cancel, .externalCancel:
            let scope = body.string("idempotencyKey").map { "cancel|\(mid)|\($0)" }
            reply = await perform(delay, scope: scope, body: request.body) { state in
                let id = request.route == .cancel ? request.pathID : state.ordersByMerchantOrderId["\(mid)|\(request.pathID ?? "")"]
                return cancel(orderId: id ?? "", mid: mid, state: &state)
            }
        case .refund:
            // Per-order deduplication (when configured): the same amount on the same order replays the first answer.
            let orderId = request.pathID ?? ""
            let amount = body.cents("amountToRefund")
            let scope = configuration.refundDeduplication == .perOrder ? amount.map { "refund|\(mid)|\(orderId)|\($0)" } : nil
            reply = await perform(delay, scope: scope) { refund(orderId: orderId, body: body, mid: mid, state: &$0) }
        case .capture:
            guard let key = body.string("idempotencyKey") else {
                reply = .validation(["IdempotencyKey": ["The IdempotencyKey field is required."]], shape: configuration.validationErrorShape)
                break
            }
            reply = await perform(delay, scope: "capture|\(mid)|\(key)", body: request.body) { capture(body, mid: mid, state: &$0) }
        case .token, .tokenize:
            preconditionFailure("handled above")
        }
        reply.mid = mid
        reply.merchantOrderId = reply.merchantOrderId ?? body.string("orderId")
        reply.idempotencyKey = body.string("idempotencyKey")
        return reply
    }

    /// Runs `work` under the state lock after `delay`, honouring an idempotency `scope` when given.
    private func perform(_ delay: () async -> Void, scope: String? = nil, body: [UInt8] = [],
                         _ work: (inout SandboxState) -> SandboxReply) async -> SandboxReply {
        if let scope {
            let window = Double(configuration.idempotencyWindow.components.seconds)
            let check = state.withLock { $0.idempotency.begin(scope: scope, body: body, now: $0.now(), window: window) }
            if case .answer(let reply) = check { return reply }
        }
        await delay()
        return mutate { state in
            let reply = work(&state)
            if let scope { state.idempotency.finish(scope: scope, reply: reply) }
            return reply
        }
    }

    /// The mid of a valid bearer token (`Bearer`/`bearer`), or `nil` for missing, malformed or expired ones.
    /// The merchant a request acts for (for fault rules with a `mid`): its bearer token's, or for a
    /// token request the mid of its app key.
    func mid(of request: APIRequest) -> String? {
        if request.route == .token {
            return JSONFields(request.body)?.string("appKey").flatMap { merchantsByAppKey[$0]?.mid }
        }
        return authenticate(request.authorization)
    }

    private func authenticate(_ header: String?) -> String? {
        guard let header else { return nil }
        let utf8 = header.utf8
        guard utf8.count > 7, utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 }) else { return nil }
        let token = String(Substring(utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") }))
        let now = clock.now()
        guard let issued = state.withLock({ $0.tokens[token] }), issued.expiresAt > now else { return nil }
        return issued.mid
    }

    private func issueToken(_ raw: [UInt8], state: inout SandboxState) -> SandboxReply {
        guard let body = JSONFields(raw), let merchant = merchantsByAppKey[body.string("appKey") ?? ""],
              merchant.appSecret == body.string("appSecret") else {
            return .problem(400, "Invalid AppKey or AppSecret")
        }
        let now = state.now()
        let ttl = Double(configuration.tokenTTL.components.seconds)
        let clientId = TokenIssuer.clientId(appKey: merchant.appKey)
        let token = tokens.issue(mid: merchant.mid, clientId: clientId, now: now, ttl: ttl)
        let expires = now.addingTimeInterval(ttl)
        state.tokens[token] = .init(mid: merchant.mid, expiresAt: expires)
        var reply = SandboxReply.envelope([
            "accessToken": token, "refreshToken": UUID().uuidString, "expires": Int64(expires.timeIntervalSince1970 * 1000),
            "id": clientId, "session": NSNull(), "daysToEnforceMFA": NSNull(), "skipAvailable": NSNull(),
        ], ledgerStatus: "ISSUED")
        reply.mid = merchant.mid
        return reply
    }

    private func transmit(_ body: JSONFields) -> SandboxReply {
        let errors = RequestValidation.transmit(body)
        guard errors.isEmpty else { return .validation(errors, shape: configuration.validationErrorShape) }
        return .envelope(["transmitId": UUID().uuidString.lowercased(), "result": "success"], ledgerStatus: "TRANSMITTED")
    }

    private func evaluate(_ body: JSONFields, raw: [UInt8], mid: String, delay: () async -> Void) async -> SandboxReply {
        let merchant = merchantsByMid[mid]!
        let errors = RequestValidation.evaluate(body, now: now(), requiresExpiry: merchant.mitMode == .managed)
        guard errors.isEmpty else { return .validation(errors, shape: configuration.validationErrorShape) }
        let scope = "evaluate|\(mid)|\(body.string("idempotencyKey")!)"
        return await perform(delay, scope: scope, body: raw) { state in
            decide(body, merchant: merchant, state: &state)
        }
    }

    /// Creates (or, for MIT, finds) the order for a valid `/evaluate` and answers its status.
    private func decide(_ body: JSONFields, merchant: SandboxMerchant, state: inout SandboxState) -> SandboxReply {
        let merchantOrderId = body.string("orderId")!
        let isMIT = body.bool("isMIT") ?? false
        if isMIT, let existingId = state.ordersByMerchantOrderId["\(merchant.mid)|\(merchantOrderId)"],
           let existing = state.orders[existingId], existing.isMIT {
            return Self.evaluateReply(existing)
        }
        let card = body.string("paymentMethod.cardNumber").map { state.vault[$0] ?? $0 }
        let inputs = DecisionRules.Inputs(card: card, email: body.string("payer.email"), phone: body.string("payer.phone"),
                                          amountCents: body.int("transaction.amount") ?? 0,
                                          transactionType: body.string("transactionType"))
        let now = state.now()
        var order = SandboxOrder(
            id: UUID().uuidString.lowercased(), mid: merchant.mid, merchantOrderId: merchantOrderId,
            amountCents: inputs.amountCents, currency: body.string("transaction.currency") ?? "USD", isMIT: isMIT,
            status: .processing, decision: "SUBMITTED", createdAt: now,
            expiryDate: body.string("expiryDateUtc").flatMap(RequestValidation.parseDate), email: inputs.email,
            firstName: body.string("billingInformation.firstName"), lastName: body.string("billingInformation.lastName"))
        order.generatedReference = referenceOfOwn(orderId: order.id)
        if isMIT, merchant.mitMode == .managed {
            let completes = DecisionRules.managedMITCompletes(inputs, outcome: configuration.managedMITOutcome)
            order.completesAt = completes ? now.addingTimeInterval(Double(configuration.managedMITCompletionDelay.components.seconds)) : nil
        } else {
            order.decision = isMIT ? DecisionRules.syncMIT(inputs) : DecisionRules.cit(inputs)
            switch order.decision {
            case "DECLINED": order.status = .cancelled
            case "CAPTUREREQUIRED": order.status = .captureRequired
            default: order.status = .processing
            }
        }
        state.insert(order)
        if order.decision == "APPROVED" { state.charge(orderId: order.id) }
        if order.decision == "CAPTUREREQUIRED" { state.pendingWebhooks.append(.init(event: "order.capturerequired", order: order)) }
        return Self.evaluateReply(state.orders[order.id]!)
    }

    private static func evaluateReply(_ order: SandboxOrder) -> SandboxReply {
        var reply = SandboxReply.envelope(["orderSessionKey": order.id, "orderId": order.id, "senseKey": NSNull(),
                                           "result": "Success", "status": order.decision], orderSessionKey: order.id)
        reply.merchantOrderId = order.merchantOrderId
        return reply
    }

    /// FlexCharge's own `referenceNumber` for a new order when ``ReferenceNumbers/generated`` is configured.
    func referenceOfOwn(orderId: String) -> String? {
        configuration.referenceNumbers == .generated ? SandboxOrder.generatedReference(id: orderId) : nil
    }

    private func listOrders(_ request: APIRequest, mid: String, state: SandboxState) -> SandboxReply {
        let from = request.queryValues("from").first.flatMap(RequestValidation.parseDate)
        let to = request.queryValues("to").first.flatMap(RequestValidation.parseDate)
        let statuses = Set(request.queryValues("status").compactMap { Int($0) })
        let pageSize = max(1, request.queryValues("pageSize").first.flatMap { Int($0) } ?? 10)
        let pageNumber = max(1, request.queryValues("pageNumber").first.flatMap { Int($0) } ?? 1)
        let text = request.queryValues("query").first
        let search = configuration.orderSearch
        let matching = state.orderIds.compactMap { state.orders[$0] }.filter { order in
            order.mid == mid && (text.map { search == .name ? order.matchesName($0) : order.merchantOrderId == $0 } ?? true) && (from.map { order.createdAt >= $0 } ?? true) && (to.map { order.createdAt <= $0 } ?? true)
                && (statuses.isEmpty || statuses.contains(order.status.rawValue))
        }
        let pageCount = (matching.count + pageSize - 1) / pageSize
        let page = matching.dropFirst((pageNumber - 1) * pageSize).prefix(pageSize)
        return .json(200, [
            "items": page.map { SandboxJSONWriter.Raw(bytes: $0.json(iso: SandboxState.iso)) }, "pageNumber": pageNumber, "pageSize": pageSize,
            "pageCount": pageCount, "totalItemCount": matching.count, "hasNextPage": pageNumber < pageCount,
            "hasPreviousPage": pageNumber > 1, "isFirstPage": pageNumber == 1, "isLastPage": pageNumber >= pageCount,
        ], ledgerStatus: "LISTED")
    }

    private func cancel(orderId: String, mid: String, state: inout SandboxState) -> SandboxReply {
        guard let order = state.orders[orderId], order.mid == mid else { return .problem(404, "Not Found") }
        var reply: SandboxReply
        if order.decision == "CANCELLED" {
            reply = .json(200, [:], ledgerStatus: "CANCELLED")
        } else if !order.isCancellable {
            reply = .problem(400, "Order cannot be cancelled in status \(order.status.name)")
        } else {
            state.end(orderId: orderId, decision: "CANCELLED")
            reply = .json(200, [:], ledgerStatus: "CANCELLED")
        }
        reply.orderSessionKey = order.id
        reply.merchantOrderId = order.merchantOrderId
        return reply
    }

    private func refund(orderId: String, body: JSONFields, mid: String, state: inout SandboxState) -> SandboxReply {
        guard var order = state.orders[orderId], order.mid == mid else { return .problem(404, "Not Found") }
        guard let cents = body.cents("amountToRefund") else {
            return .validation(["AmountToRefund": ["The AmountToRefund field is required."]], shape: configuration.validationErrorShape)
        }
        let refundable = order.charged ? order.amountCents - order.refundedCents : 0
        guard cents > 0, cents <= refundable else {
            let message = "Amount to refund (\(DollarAmount.jsonNumber(cents: cents))) is greater than maximum refund amount in (\(DollarAmount.jsonNumber(cents: refundable))))"
            return .envelope(["responseCode": "2001", "responseMessage": message, "transactionId": NSNull(), "success": false,
                              "status": "FAILED", "errors": [["item1": message, "item2": "2001", "item3": "2001", "item4": true]]],
                             orderSessionKey: order.id)
        }
        order.refundedCents += cents
        if order.refundedCents == order.amountCents { order.status = .returned }
        state.orders[orderId] = order
        state.ledger.refunds.append(.init(time: SandboxState.iso(state.now()), mid: mid, orderSessionKey: orderId, amountCents: cents))
        state.pendingWebhooks.append(.init(event: "order.refunded", order: order))
        return .envelope(["status": "SUCCESS", "responseCode": "0", "responseMessage": "APPROVED",
                          "transactionId": UUID().uuidString.lowercased()], orderSessionKey: order.id)
    }

    private func capture(_ body: JSONFields, mid: String, state: inout SandboxState) -> SandboxReply {
        guard let order = state.orders[body.string("orderId") ?? ""], order.mid == mid else { return .problem(404, "Not Found") }
        guard order.status == .captureRequired else {
            return .envelope(["status": "FAILED", "success": false, "responseMessage": "Order is not awaiting capture"],
                             orderSessionKey: order.id)
        }
        state.charge(orderId: order.id)
        return .envelope(["status": "SUCCESS", "captureStatus": "SUCCESS"], orderSessionKey: order.id)
    }
}
