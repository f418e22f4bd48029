import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// The simulator's documented behaviour: validation, decisions, idempotency, orders, refunds and cancels.
@Suite struct SandboxBehaviourTests {
    /// Each required `/evaluate` field: removing it gives 400 with the documented field and message.
    @Test(arguments: [
        ("orderId", "OrderId", "Merchant's orderId is required"),
        ("idempotencyKey", "IdempotencyKey", "The IdempotencyKey field is required."),
        ("isDeclined", "IsDeclined", "The IsDeclined field is required."),
        ("transaction.id", "Transaction.Id", "The Id field is required."),
        ("transaction.responseCode", "Transaction.ResponseCode", "The ResponseCode field is required."),
        ("transaction.avsResultCode", "Transaction.AvsResultCode", "The AvsResultCode field is required."),
        ("transaction.cvvResultCode", "Transaction.CvvResultCode", "The CvvResultCode field is required."),
        ("transaction.cavvResultCode", "Transaction.CavvResultCode", "The CavvResultCode field is required."),
        ("transaction.responseCodeSource", "Transaction.ResponseCodeSource", "The ResponseCodeSource field is required."),
        ("payer", "Payer", "The Payer field is required."),
        ("paymentMethod", "PaymentMethod", "The PaymentMethod field is required."),
        ("billingInformation", "BillingInformation", "The BillingInformation field is required."),
    ])
    func evaluateRequiredField(path: String, field: String, message: String) async throws {
        try await SandboxHarness.with { h in
            let body = try h.evaluateBody(h.evaluateRequest()) { object in Self.remove(path, from: &object) }
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(body: body, credentials: h.credentials) })
            #expect(error.httpStatus == 400)
            #expect(error.fieldErrors[field] == [message])
            #expect(h.sandbox.ledger().charges.isEmpty)
        }
    }

    /// Each required `/transmit` field.
    @Test(arguments: [("orderId", "OrderId"), ("isDeclined", "IsDeclined"), ("isMIT", "IsMIT"), ("transaction", "Transaction"),
                      ("payer", "Payer"), ("paymentMethod", "PaymentMethod")])
    func transmitRequiredField(path: String, field: String) async throws {
        try await SandboxHarness.with { h in
            let evaluate = h.evaluateRequest()
            let request = TransmitRequest(orderId: "T", isDeclined: true, transaction: evaluate.transaction, payer: evaluate.payer,
                                          paymentMethod: PaymentMethodDetails(cardLast4Digits: "1111"))
            var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as! [String: Any]
            Self.remove(path, from: &object)
            let body = Array(try JSONSerialization.data(withJSONObject: object))
            let error = try #require(await flexChargeError { _ = try await h.client.transmit(body: body, credentials: h.credentials) })
            #expect(error.httpStatus == 400)
            #expect(error.fieldErrors[field] != nil)
        }
    }

    @Test(arguments: [5, 10, 20000, 25000])
    func sandboxAmountRule(amount: Int) async throws {
        try await SandboxHarness.with { h in
            let error = try #require(await flexChargeError {
                _ = try await h.client.evaluate(h.evaluateRequest(amount: amount), credentials: h.credentials)
            })
            #expect(error.fieldErrors["Transaction.Amount"] != nil)
        }
    }

    @Test func invalidExpiryAndCountryCode() async throws {
        try await SandboxHarness.with { h in
            let past = h.evaluateRequest(isMIT: true, expiry: Date().addingTimeInterval(-60))
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(past, credentials: h.credentials) })
            #expect(error.fieldErrors["ExpiryDateUtc"] == ["The field ExpiryDateUtc is invalid."])
            var badCountry = h.evaluateRequest()
            badCountry.billingInformation.countryCode = "USA"
            let countryError = try #require(await flexChargeError { _ = try await h.client.evaluate(badCountry, credentials: h.credentials) })
            #expect(countryError.fieldErrors["BillingInformation.CountryCode"] != nil)
        }
    }

    /// The documented CIT decision rules.
    @Test(arguments: [
        ("4111111111111111", "shopper@example.com", "+1 555", 1550, nil, "CHALLENGE"),
        ("4111111111111111", "shopper@example.com", nil, 1550, nil, "DECLINED"),
        ("4000002760003184", "shopper@example.com", nil, 1550, nil, "APPROVED"),
        ("4000300011112220", "shopper@example.com", nil, 1500, nil, "DECLINED"),
        ("5555555555554444", "please-approve@example.com", nil, 1555, nil, "APPROVED"),
        ("5555555555554444", "shopper@example.com", nil, 1500, nil, "APPROVED"),
        ("5555555555554444", "shopper@example.com", nil, 1555, nil, "DECLINED"),
        ("4000002760003184", "shopper@example.com", nil, 1550, "AUTHORIZATION", "CAPTUREREQUIRED"),
    ] as [(String, String, String?, Int, String?, String)])
    func citDecision(card: String, email: String, phone: String?, amount: Int, type: String?, expected: String) async throws {
        try await SandboxHarness.with { h in
            let request = h.evaluateRequest(orderId: "DEC", amount: amount, card: card, email: email, phone: phone, transactionType: type)
            let answer = try await h.client.evaluate(request, credentials: h.credentials)
            #expect(answer.body.status == expected)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "DEC") == (expected == "APPROVED" ? 1 : 0))
        }
    }

    @Test func citWithNewKeyForSameOrderChargesTwice() async throws {
        try await SandboxHarness.with { h in
            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "DUP"), credentials: h.credentials)
            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "DUP"), credentials: h.credentials)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "DUP") == 2)
        }
    }

    @Test func managedMITSubmittedThenCompletedOrExpiredByClock() async throws {
        try await SandboxHarness.with { h in
            let expiry = Date().addingTimeInterval(14 * 86400)
            let approved = try await h.client.evaluate(h.evaluateRequest(orderId: "MIT-OK", isMIT: true, expiry: expiry), credentials: h.credentials)
            let declined = try await h.client.evaluate(
                h.evaluateRequest(orderId: "MIT-NO", card: "4000300011112220", isMIT: true, expiry: expiry), credentials: h.credentials)
            #expect(approved.body.status == "SUBMITTED")
            let again = try await h.client.evaluate(h.evaluateRequest(orderId: "MIT-OK", isMIT: true, expiry: expiry), credentials: h.credentials)
            #expect(again.body.status == "SUBMITTED")
            #expect(again.body.orderSessionKey == approved.body.orderSessionKey)
            h.sandbox.advanceClock(by: .seconds(3601))
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "MIT-OK") == 1)
            #expect(try await h.client.order(id: approved.body.orderId!, credentials: h.credentials).body.status == 7)
            #expect(try await h.client.outcome(orderSessionKey: declined.body.orderId!, credentials: h.credentials).body.status == "SUBMITTED")
            h.sandbox.advanceClock(by: .seconds(15 * 86400))
            #expect(try await h.client.outcome(orderSessionKey: declined.body.orderId!, credentials: h.credentials).body.status == "EXPIRED")
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "MIT-NO") == 0)
        }
    }

    @Test func forcedCompletionOverControlAPI() async throws {
        try await SandboxHarness.with { h in
            let expiry = Date().addingTimeInterval(14 * 86400)
            let answer = try await h.client.evaluate(
                h.evaluateRequest(orderId: "MIT-F", card: "4000300011112220", isMIT: true, expiry: expiry), credentials: h.credentials)
            #expect(try await h.rawStatus("POST", "_sandbox/orders/\(answer.body.orderId!)/complete") == 200)
            #expect(try await h.rawStatus("POST", "_sandbox/orders/\(answer.body.orderId!)/complete") == 409)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "MIT-F") == 1)
        }
    }

    @Test func syncMITReturnsCurrentStateForSameOrderId() async throws {
        try await SandboxHarness.with { h in
            var request = h.evaluateRequest(orderId: "SYNC-1", isMIT: true)
            request.mid = h.syncCredentials.mid
            let first = try await h.client.evaluate(request, credentials: h.syncCredentials)
            request.idempotencyKey = UUID().uuidString
            let second = try await h.client.evaluate(request, credentials: h.syncCredentials)
            #expect(first.body.status == "APPROVED")
            #expect(second.body.orderSessionKey == first.body.orderSessionKey)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "SYNC-1") == 1)
        }
    }

    @Test func idempotentReplayIsByteEqualAndDifferentBodyConflicts() async throws {
        try await SandboxHarness.with { h in
            let request = h.evaluateRequest(orderId: "IDEM")
            let first = try await h.client.evaluate(request, credentials: h.credentials)
            let replay = try await h.client.evaluate(request, credentials: h.credentials)
            #expect(replay.rawBody == first.rawBody)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "IDEM") == 1)
            var changed = request
            changed.transaction.amount += 100
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(changed, credentials: h.credentials) })
            #expect(error.httpStatus == 409)
            #expect(error.failureClass == .permanent)
        }
    }

    @Test func concurrentDuplicateIsInProgressConflict() async throws {
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "POST /evaluate", kind: .latency, latencyMilliseconds: 2000, count: 1)]
        }) { h in
            _ = try await h.client.orders(query: .init(), credentials: h.credentials)
            let request = h.evaluateRequest(orderId: "CONC")
            // Whichever of the two reaches the sandbox first takes the 2 s latency fault and holds the key;
            // the other arrives while it is in progress. (Under a loaded test run the second call can overtake
            // the first, so the test does not assume an order.)
            func evaluate() async -> Result<String?, any Error> {
                do { return .success(try await h.client.evaluate(request, credentials: h.credentials).body.status) } catch { return .failure(error) }
            }
            async let first = evaluate()
            try await Task.sleep(for: .milliseconds(200))
            let second = await evaluate()
            let results = [await first, second]
            let approved = results.compactMap { try? $0.get() }.compactMap { $0 }
            let conflicts = results.compactMap { result -> FlexChargeError? in
                if case .failure(let error as FlexChargeError) = result { return error }
                return nil
            }
            #expect(approved == ["APPROVED"])
            #expect(conflicts.count == 1)
            #expect(conflicts.first?.httpStatus == 409)
            #expect(conflicts.first?.failureClass == .retryable)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "CONC") == 1)
        }
    }

    @Test func idempotencyKeyExpiresAfter24Hours() async throws {
        try await SandboxHarness.with { h in
            let request = h.evaluateRequest(orderId: "EXP")
            let first = try await h.client.evaluate(request, credentials: h.credentials)
            h.sandbox.advanceClock(by: .seconds(24 * 3600 + 1))
            let later = try await h.client.evaluate(request, credentials: h.credentials)
            #expect(later.body.orderSessionKey != first.body.orderSessionKey)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "EXP") == 2)
        }
    }

    @Test func refundAboveRefundableFailsWith2001() async throws {
        try await SandboxHarness.with { h in
            let answer = try await h.client.evaluate(h.evaluateRequest(amount: 1500), credentials: h.credentials)
            let id = try #require(answer.body.orderId)
            let tooMuch = try await h.client.refund(orderId: id, amountCents: 1501, credentials: h.credentials)
            #expect(tooMuch.httpStatus == 200)
            #expect(tooMuch.body.success == false)
            #expect(tooMuch.body.status == "FAILED")
            #expect(tooMuch.body.responseCode == "2001")
            #expect(tooMuch.body.responseMessage == "Amount to refund (15.01) is greater than maximum refund amount in (15.00))")
            #expect(try await h.client.refund(orderId: id, amountCents: 1500, credentials: h.credentials).body.status == "SUCCESS")
            #expect(try await h.client.refund(orderId: id, amountCents: 1, credentials: h.credentials).body.responseCode == "2001")
            #expect(try await h.client.order(id: id, credentials: h.credentials).body.statusName == "RETURNED")
        }
    }

    @Test func cancelInNonCancellableStateIs400() async throws {
        try await SandboxHarness.with { h in
            let approved = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials)
            let error = try #require(await flexChargeError {
                _ = try await h.client.cancel(orderId: approved.body.orderId!, credentials: h.credentials)
            })
            #expect(error.httpStatus == 400)
            #expect(error.message == "Order cannot be cancelled in status COMPLETED")
            let missing = try #require(await flexChargeError { _ = try await h.client.cancel(orderId: "nope", credentials: h.credentials) })
            #expect(missing.httpStatus == 404)
        }
    }

    @Test func tokenizeRejectsNonWhitelistedCardAndUnknownKey() async throws {
        try await SandboxHarness.with { h in
            let real = CardToTokenize(firstName: "A", lastName: "B", number: "5105105105105100", month: "03", year: "2030")
            let error = try #require(await flexChargeError { _ = try await h.client.tokenize(card: real, credentials: h.credentials) })
            #expect(error.fieldErrors["CreditCard.Number"] != nil)
            var wrongKey = h.credentials
            wrongKey.tokenizationKey = "other"
            let card = CardToTokenize(firstName: "A", lastName: "B", number: "4111111111111111", month: "3", year: "2030")
            let keyError = try #require(await flexChargeError { _ = try await h.client.tokenize(card: card, credentials: wrongKey) })
            #expect(keyError.httpStatus == 400)
        }
    }

    @Test func missingOrMalformedBearerIs401() async throws {
        try await SandboxHarness.with { h in
            for header in [nil, "Bearer not-a-token", "Basic abc"] as [String?] {
                let status = try await h.rawStatus("GET", "v1/orders", authorization: header)
                #expect(status == 401)
            }
        }
    }

    /// Removes a dotted path from a JSON object.
    static func remove(_ path: String, from object: inout [String: Any]) {
        let parts = path.split(separator: ".").map(String.init)
        if parts.count == 1 {
            object[parts[0]] = nil
        } else if var inner = object[parts[0]] as? [String: Any] {
            inner[parts[1]] = nil
            object[parts[0]] = inner
        }
    }
}

/// Fidelity to FlexCharge's sandbox as an independently written client saw it (recorded exchanges, issue 16).
extension SandboxBehaviourTests {
    /// The recorded `/tokenize` answer's field names (flexcharge-api.md §4.3).
    static let recordedTransactionFields: Set<String> = [
        "on_test_gateway", "created_at", "updated_at", "succeeded", "state", "token", "transaction_type", "order_id", "ip",
        "description", "email", "merchant_name_descriptor", "merchant_location_descriptor", "gateway_specific_fields",
        "gateway_specific_response_fields", "gateway_transaction_id", "gateway_latency_ms", "amount", "currency_code",
        "retain_on_success", "payment_method_added", "message_key", "message", "response", "payment_method",
    ]
    static let recordedPaymentMethodFields: Set<String> = [
        "token", "created_at", "updated_at", "email", "data", "storage_state", "test", "metadata", "last_four_digits",
        "first_six_digits", "card_type", "first_name", "last_name", "month", "year", "address1", "address2", "city", "state",
        "zip", "country", "phone_number", "company", "full_name", "payment_method_type", "errors", "fingerprint",
        "verification_value", "number",
    ]

    static func tokenizeBody(month: Any, number: String = "4111111111111111") -> [String: Any] {
        ["payment_method": ["credit_card": ["first_name": "Cure", "last_name": "Tester", "number": number,
                                            "verification_value": "999", "month": month, "year": 2030]]]
    }

    /// A bearer-only `/tokenize` (no `mid`/`environment` pair) with a one-digit integer month is accepted; without
    /// the pair, a missing bearer is a 400, a bad one a 401, and a query mid that is not the bearer's a 403.
    @Test func tokenizeAcceptsABearerOnlyRequestAndAOneDigitIntegerMonth() async throws {
        try await SandboxHarness.with { h in
            let bearer = try await h.rawToken().header
            let (status, answer) = try await h.rawJSON("POST", "v1/tokenize", authorization: bearer, body: Self.tokenizeBody(month: 3))
            #expect(status == 200)
            let card = (answer?["transaction"] as? [String: Any])?["payment_method"] as? [String: Any]
            #expect((card?["token"] as? String)?.isEmpty == false)
            #expect(card?["month"] as? Int == 3)

            #expect(try await h.rawJSON("POST", "v1/tokenize", body: Self.tokenizeBody(month: 3)).status == 400)
            #expect(try await h.rawJSON("POST", "v1/tokenize", authorization: "Bearer forged", body: Self.tokenizeBody(month: 3)).status == 401)
            let other = "v1/tokenize?mid=\(SandboxHarness.syncMerchant.mid)"
            #expect(try await h.rawJSON("POST", other, authorization: bearer, body: Self.tokenizeBody(month: 3)).status == 403)
            // The documented query pair still works, and months outside 1...12 or not numbers are still refused.
            let documented = "v1/tokenize?mid=\(h.credentials.mid)&environment=\(SandboxHarness.merchant.tokenizationKey)"
            #expect(try await h.rawJSON("POST", documented, body: Self.tokenizeBody(month: "03")).status == 200)
            for month in [0, 13, "ab", "+3", "003"] as [Any] {
                let refused = try await h.rawJSON("POST", documented, body: Self.tokenizeBody(month: month))
                #expect(refused.status == 400, "month \(month)")
                #expect(refused.object?["CreditCard.Month"] != nil)
            }
        }
    }

    /// The `/oauth2/token` answer's `id` and the JWT's `sub` name the API client, stable per key and distinct from the
    /// MID, which appears only as `custom:mid`.
    @Test func tokenAnswerNamesTheAPIClientNotTheMerchant() async throws {
        try await SandboxHarness.with { h in
            let first = try await h.rawToken().answer
            let again = try await h.rawToken().answer
            let other = try await h.rawToken(appKey: SandboxHarness.syncMerchant.appKey, appSecret: SandboxHarness.syncMerchant.appSecret).answer
            let id = try #require(first["id"] as? String)
            #expect(UUID(uuidString: id) != nil)
            #expect(id.lowercased() != h.credentials.mid.lowercased())
            #expect(again["id"] as? String == id)
            #expect(other["id"] as? String != id)
            let claims = try Self.jwtClaims(try #require(first["accessToken"] as? String))
            #expect(claims["sub"] as? String == id)
            #expect(claims["unique_name"] as? String == id)
            #expect(claims["custom:mid"] as? String == h.credentials.mid)
            let text = try JSONSerialization.data(withJSONObject: first.filter { $0.key != "accessToken" })
            #expect(!String(decoding: text, as: UTF8.self).lowercased().contains(h.credentials.mid.lowercased()))
        }
    }

    /// The `/tokenize` success body has the recorded field set: mostly null, `first_six_digits` eight digits long,
    /// and neither the PAN nor the CVV echoed.
    @Test func tokenizeAnswerCarriesTheRecordedFieldSet() async throws {
        try await SandboxHarness.with { h in
            let path = "v1/tokenize?mid=\(h.credentials.mid)&environment=\(SandboxHarness.merchant.tokenizationKey)"
            let (status, answer) = try await h.rawJSON("POST", path, body: Self.tokenizeBody(month: 9))
            #expect(status == 200)
            let object = try #require(answer)
            #expect(object["cardBinInfo"] is NSNull)
            #expect(object["success"] as? Bool == true)
            let transaction = try #require(object["transaction"] as? [String: Any])
            #expect(Set(transaction.keys) == Self.recordedTransactionFields)
            #expect(transaction["state"] is NSNull)
            #expect(transaction["succeeded"] as? Bool == true)
            let card = try #require(transaction["payment_method"] as? [String: Any])
            #expect(Set(card.keys) == Self.recordedPaymentMethodFields)
            #expect(card["fingerprint"] is NSNull)
            #expect(card["first_six_digits"] as? String == "41111111")
            #expect(card["last_four_digits"] as? String == "1111")
            #expect(card["number"] is NSNull)
            #expect(card["verification_value"] is NSNull)
            #expect(card["month"] as? Int == 9)
            #expect(card["first_name"] as? String == "Cure")
            let nulls = card.values.filter { $0 is NSNull }.count + transaction.values.filter { $0 is NSNull }.count
            #expect(nulls > (card.count + transaction.count) / 2)
        }
    }

    /// Set to the documented name search, `GET /orders?query=` finds orders by the payer's name, not by the merchant's
    /// order id; set to generated references, `referenceNumber` is not the merchant's order id.
    @Test func ordersQueryCanBeANameSearchAndReferencesFlexChargesOwn() async throws {
        try await SandboxHarness.with(configure: { $0.orderSearch = .name; $0.referenceNumbers = .generated }) { h in
            let answer = try await h.client.evaluate(h.evaluateRequest(orderId: "NAME-1"), credentials: h.credentials)
            for text in ["NAME-1", "Alice"] {
                #expect(try await h.client.orders(query: OrdersQuery(query: text), credentials: h.credentials).body.items.isEmpty)
            }
            for text in ["Joe", "jones", "joe jones"] {
                let items = try await h.client.orders(query: OrdersQuery(query: text), credentials: h.credentials).body.items
                #expect(items.map(\.id) == [answer.body.orderId], "query \(text)")
            }
            let order = try await h.client.order(id: try #require(answer.body.orderId), credentials: h.credentials).body
            #expect(order.referenceNumber != "NAME-1")
            #expect(order.referenceNumber?.hasPrefix("FC-") == true)
            #expect(order.firstName == "Joe")
            #expect(order.lastName == "Jones")
        }
    }

    /// The claims of a JWT (its middle part, base64url).
    static func jwtClaims(_ token: String) throws -> [String: Any] {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        let data = try #require(Data(base64Encoded: text))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
