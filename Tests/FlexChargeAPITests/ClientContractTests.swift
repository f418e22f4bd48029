import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// The client against the running simulator over loopback: every endpoint and every failure class.
@Suite struct ClientContractTests {
    @Test func evaluateApprovesAndLedgerShowsOneCharge() async throws {
        try await SandboxHarness.with { h in
            let answer = try await h.client.evaluate(h.evaluateRequest(orderId: "ORD-1"), credentials: h.credentials)
            #expect(answer.httpStatus == 200)
            #expect(answer.body.status == "APPROVED")
            #expect(answer.body.orderSessionKey == answer.body.orderId)
            #expect(answer.latency > .zero)
            #expect(!answer.rawBody.isEmpty)
            let ledger = h.sandbox.ledger()
            #expect(ledger.chargeCount(merchantOrderId: "ORD-1") == 1)
            #expect(ledger.requests.filter { $0.route == "POST /oauth2/token" }.count == 1)
        }
    }

    @Test func transmitTokenizeOutcomeOrderAndOrders() async throws {
        try await SandboxHarness.with { h in
            let request = h.evaluateRequest()
            let transmit = try await h.client.transmit(
                TransmitRequest(mid: h.credentials.mid, orderId: "T-1", isDeclined: false, transaction: request.transaction,
                                payer: request.payer, paymentMethod: PaymentMethodDetails(cardBrand: "VISA", cardLast4Digits: "3184")),
                credentials: h.credentials)
            #expect(transmit.body.result == "success")
            #expect(transmit.body.transmitId != nil)

            let card = CardToTokenize(firstName: "Joe", lastName: "Jones", number: "4111111111111111", month: "03", year: "2030")
            let vaulted = try await h.client.tokenize(card: card, credentials: h.credentials)
            let token = try #require(vaulted.body.token)
            var challenge = h.evaluateRequest(card: token, phone: "+1 555 0100")
            challenge.paymentMethod.token = true
            let evaluated = try await h.client.evaluate(challenge, credentials: h.credentials)
            #expect(evaluated.body.status == "CHALLENGE")
            let key = try #require(evaluated.body.orderSessionKey)

            let outcome = try await h.client.outcome(orderSessionKey: key, credentials: h.credentials)
            #expect(outcome.body.status == "PROCESSING")
            #expect(outcome.body.confirmationId?.count == 8)
            let unknown = try await h.client.outcome(orderSessionKey: "nope", credentials: h.credentials)
            #expect(unknown.body.status == "NOTFOUND")

            let order = try await h.client.order(id: key, credentials: h.credentials)
            #expect(order.body.status == 4)
            #expect(order.body.statusName == "PROCESSING")
            #expect(order.body.referenceNumber == challenge.orderId)

            for _ in 0..<3 { _ = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials) }
            let page = try await h.client.orders(query: OrdersQuery(statuses: [7], pageSize: 2, pageNumber: 1), credentials: h.credentials)
            #expect(page.body.items.count == 2)
            #expect(page.body.totalItemCount == 3)
            #expect(page.body.hasNextPage == true)
        }
    }

    @Test func captureCancelExternalCancelAndRefund() async throws {
        try await SandboxHarness.with { h in
            let auth = try await h.client.evaluate(h.evaluateRequest(orderId: "AUTH-1", transactionType: "AUTHORIZATION"),
                                                   credentials: h.credentials)
            #expect(auth.body.status == "CAPTUREREQUIRED")
            let id = try #require(auth.body.orderId)
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "AUTH-1") == 0)
            let captured = try await h.client.capture(CaptureRequest(idempotencyKey: UUID().uuidString, orderId: id, amount: 1500),
                                                      credentials: h.credentials)
            #expect(captured.body.status == "SUCCESS")
            #expect(h.sandbox.ledger().chargeCount(merchantOrderId: "AUTH-1") == 1)

            let refund = try await h.client.refund(orderId: id, amountCents: 1234, message: "Customer \"request\"", credentials: h.credentials)
            #expect(refund.body.status == "SUCCESS")
            #expect(h.sandbox.ledger().refunds.map(\.amountCents) == [1234])

            let second = try await h.client.evaluate(h.evaluateRequest(orderId: "AUTH-2", transactionType: "AUTHORIZATION"),
                                                     credentials: h.credentials)
            let cancelled = try await h.client.cancel(orderId: second.body.orderId!, idempotencyKey: UUID().uuidString,
                                                      credentials: h.credentials)
            #expect(cancelled.httpStatus == 200)
            #expect(try await h.client.order(id: second.body.orderId!, credentials: h.credentials).body.status == 2)

            _ = try await h.client.evaluate(h.evaluateRequest(orderId: "AUTH-3", transactionType: "AUTHORIZATION"), credentials: h.credentials)
            let external = try await h.client.externalCancel(externalOrderId: "AUTH-3", credentials: h.credentials)
            #expect(external.httpStatus == 200)
            #expect(h.sandbox.ledger().requests.last?.status == "CANCELLED")
        }
    }
}

/// The client reads the richer answers FlexCharge's real sandbox gave (issue 16) tolerantly.
extension ClientContractTests {
    /// The recorded `/tokenize` answer, with informational fields of unexpected types, still yields its token; the
    /// eight-digit BIN is kept.
    @Test func tokenizeAnswerIsDecodedTolerantly() async throws {
        let recorded = #"""
        {"transaction":{"on_test_gateway":true,"created_at":"2024-05-14T13:44:25.3179186Z","succeeded":true,
         "state":{"odd":1},"token":null,"amount":0,"payment_method_added":false,"message":null,
         "payment_method":{"token":"d3e10716-6aac-4eb8-a74d-c1a3027f1d96","last_four_digits":"1111",
          "first_six_digits":"41111111","card_type":null,"first_name":"Cure","last_name":"Tester","month":"09",
          "year":2025,"fingerprint":null,"verification_value":null,"number":null,"errors":[]}},
         "cardBinInfo":null,"success":true,"result":null,"status":null,"statusCode":null,"errors":[],"customProperties":{}}
        """#
        let decoded = try JSONDecoder().decode(TokenizeResponse.self, from: Data(recorded.utf8))
        #expect(decoded.token == "d3e10716-6aac-4eb8-a74d-c1a3027f1d96")
        #expect(decoded.transaction?.state == nil)
        #expect(decoded.transaction?.payment_method?.month == nil)
        #expect(decoded.transaction?.payment_method?.year == 2025)
        #expect(decoded.transaction?.payment_method?.first_six_digits == "41111111")
    }

    /// Against the simulator: the full answer decodes, the BIN passes the client's checks, nothing is null that the
    /// outbox reads.
    @Test func tokenizeAgainstTheSimulatorKeepsTheRecordedFields() async throws {
        try await SandboxHarness.with { h in
            let card = CardToTokenize(firstName: "Joe", lastName: "Jones", number: "4111111111111111", month: "3", year: "2030")
            let vaulted = try await h.client.tokenize(card: card, credentials: h.credentials).body
            let method = try #require(vaulted.transaction?.payment_method)
            #expect(vaulted.token != nil)
            #expect(method.first_six_digits == "41111111")
            #expect(method.last_four_digits == "1111")
            #expect(method.month == 3)
            #expect(method.fingerprint == nil)
            #expect(vaulted.transaction?.state == nil)
            #expect(vaulted.transaction?.succeeded == true)
        }
    }
}
