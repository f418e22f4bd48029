import Crypto
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// Webhooks as delivered over HTTP, verified with an independent HMAC-SHA512 computation.
@Suite struct WebhookSignatureTests {
    @Test func chargebackWebhookIsSignedPerSection67() async throws {
        try await SandboxHarness.with { h in
            h.sandbox.setWebhookURL(h.running.controlURL + "webhook-sink", forMid: h.credentials.mid)
            let answer = try await h.client.evaluate(h.evaluateRequest(orderId: "WH-1"), credentials: h.credentials)
            #expect(h.sandbox.trigger(event: "payment.chargeback.received", orderId: answer.body.orderId!))
            var received: [ReceivedWebhook] = []
            for _ in 0..<100 where received.count < 2 {
                try await Task.sleep(for: .milliseconds(20))
                received = h.sandbox.receivedWebhooks()
            }
            #expect(received.count == 2)
            for delivery in received {
                let headers = delivery.headers
                let nonce = try #require(headers["x-fc-nonce"])
                let date = try #require(headers["x-fc-date"])
                let host = try #require(headers["host"])
                let authorization = try #require(headers["x-fc-authorization"])
                #expect(host == "127.0.0.1:\(h.running.port)")
                #expect(nonce.count == 32)
                // Independent computation (contract §6.7).
                let contentHash = Data(SHA512.hash(data: delivery.body)).base64EncodedString()
                #expect(headers["x-fc-content-sha512"] == contentHash)
                let key = SymmetricKey(data: Data(base64Encoded: SandboxHarness.merchant.webhookSubscriberKey!)!)
                let stringToSign = "POST\n\(nonce);\(date);\(host);\(contentHash)"
                let expected = Data(HMAC<SHA512>.authenticationCode(for: Data(stringToSign.utf8), using: key)).base64EncodedString()
                #expect(authorization == "HMAC-SHA512 SignedHeaders=x-fc-nonce;x-fc-date;host;x-fc-content-sha512&Signature=\(expected)")
                #expect(WebhookSignature.verify(body: delivery.body, host: host, date: date, nonce: nonce, authorization: authorization,
                                                subscriberKey: SandboxHarness.merchant.webhookSubscriberKey!))
                var tampered = delivery.body
                tampered[tampered.count / 2] ^= 1
                #expect(!WebhookSignature.verify(body: tampered, host: host, date: date, nonce: nonce, authorization: authorization,
                                                 subscriberKey: SandboxHarness.merchant.webhookSubscriberKey!))
                let payload = try #require(try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any])
                #expect(payload["IsTestMode"] as? Bool == true)
                #expect(payload["IsResent"] as? Bool == false)
                #expect(payload["ExternalOrderId"] as? String == "WH-1")
                #expect(payload["OrderId"] as? String == answer.body.orderId)
            }
            let events = Set(received.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any])?["Event"] as? String })
            #expect(events == ["order.completed", "payment.chargeback.received"])
        }
    }
}
