import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport


@Suite struct LogRedactionTests {
    @Test func fullClientRunLeaksNoSecretTokenOrCardNumber() async throws {
        let store = LogRecorder()
        let logger = store.logger
        let card = "4111111111111111"
        var descriptions: [String] = []
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "POST /evaluate", kind: .status, status: 503, count: 1)]
        }, logger: logger) { h in
            let tokenized = try await h.client.tokenize(
                card: CardToTokenize(firstName: "Joe", lastName: "Jones", number: card, month: "03", year: "2030",
                                     verificationValue: "999"), credentials: h.credentials)
            descriptions.append("\(h.credentials) \(String(reflecting: h.credentials))")
            if let error = await flexChargeError({ _ = try await h.client.evaluate(h.evaluateRequest(card: card, phone: "1"), credentials: h.credentials) }) {
                descriptions.append("\(error)")
            }
            let answer = try await h.client.evaluate(h.evaluateRequest(card: card, phone: "1"), credentials: h.credentials)
            #expect(answer.body.status == "CHALLENGE")
            h.sandbox.advanceClock(by: .seconds(700))
            _ = try await h.client.order(id: answer.body.orderId!, credentials: h.credentials)
            if let error = await flexChargeError({ _ = try await h.client.order(id: "missing", credentials: h.credentials) }) {
                descriptions.append("\(error)")
            }
            #expect(tokenized.body.token != nil)
        }
        let logs = store.all
        #expect(logs.count > 3, "the run must have produced log lines to scan")
        // The bearer tokens are JWTs the sandbox issued: they all start with this header segment.
        let forbidden = [SandboxHarness.merchant.appSecret, SandboxHarness.merchant.tokenizationKey, card, "eyJhbGciOi"]
        for text in logs + descriptions {
            for secret in forbidden {
                #expect(!text.contains(secret), "leaked \(secret.prefix(3))… in: \(text.prefix(200))")
            }
        }
    }
}
