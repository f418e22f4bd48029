import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import Logging
import NIOCore
@testable import OutboxEngine
@testable import OutboxServers
import Synchronization
import Testing
import TestSupport

/// `POST /v1/tokenize` and ``CardTokenizer``: the token comes back, the card number goes nowhere.
@Suite struct TokenizationTests {
    static let pan = "4000002760003184"  // the sandbox approves evaluates with this card

    static func request(merchant: String = "m1", channel: String = "cit", origin: String? = "website", number: String = pan) -> [UInt8] {
        var object: [String: Any] = [
            "merchantId": merchant, "channel": channel, "site": "https://shop.example",
            "card": ["firstName": "Joe", "lastName": "Jones", "number": number, "month": "03", "year": "2030", "verificationValue": "999"],
        ]
        if let origin { object["origin"] = origin }
        return Array(try! JSONSerialization.data(withJSONObject: object))
    }

    static func auth(_ secret: String = RunningIntegrationServer.tokenizeSecret) -> [(String, String)] {
        [("Authorization", "Bearer \(secret)"), ("Content-Type", "application/json")]
    }

    /// Every row of every table of the flexcharge schema, as text.
    static func everyTable(_ h: WorkerHarness) async throws -> String {
        let tables = try await h.session.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'flexcharge' AND table_type = 'BASE TABLE'").rows
        var dump = ""
        for table in tables {
            let name: String = try table.decode("table_name")
            dump += try await h.session.query(
                "SELECT coalesce(string_agg(t::text, E'\\n'), '') AS dump FROM flexcharge.\(quotedIdentifier(name)) t").first!.decode("dump", as: String.self)
        }
        return dump
    }

    @Test func theTokenIsReturnedAndTheCardNumberIsInNoLogAndNoTable() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let logs = LogRecorder()
            let server = try await RunningIntegrationServer.start(h, logger: logs.logger)
            defer { Task { await server.stop() } }
            let reply = try await server.post("/v1/tokenize", headers: Self.auth(), body: Self.request())
            #expect(reply.status == 200)
            let answer = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: String] ?? [:]
            let token = try #require(answer["token"])
            #expect(!token.isEmpty && !token.contains(Self.pan))
            #expect(answer["environment"] == "sandbox")
            #expect(answer["lastFour"] == "3184")

            // The gateway writes the token into its evaluate; FlexCharge decides on the card behind it.
            var payload = try JSONSerialization.jsonObject(with: Data(SamplePayloads.evaluate(
                orderID: "t-1", amountCents: 1501, payerEmail: "shopper@example.com", mit: false).utf8)) as! [String: Any]
            var method = payload["paymentMethod"] as! [String: Any]
            method["cardNumber"] = token
            method["token"] = true
            payload["paymentMethod"] = method
            let text = String(decoding: try JSONSerialization.data(withJSONObject: payload), as: UTF8.self)
            let id = try await h.insert("evaluate", order: "t-1", payload: text)
            try await h.runWorker(logger: logs.logger) { try await h.waitUntilSettled() }
            #expect(try await h.event(id).decode("decision", as: String?.self) == "APPROVED")

            // The library call gives a token too.
            let sealer = try CredentialSealer(keyBytes: WorkerHarness.keyBytes)
            let tokenizer = CardTokenizer(session: h.session, sealer: sealer, clients: ["sandbox": server.client], logger: logs.logger)
            let vaulted = try await tokenizer.tokenize(
                CardToTokenize(firstName: "Joe", lastName: "Jones", number: "4242424242424242", month: "03", year: "2030"),
                merchantID: "m1", channel: "mit", origin: nil, site: "https://shop.example")
            #expect(!vaulted.token.isEmpty)

            #expect(!logs.all.isEmpty)
            for pan in [Self.pan, "4242424242424242"] {
                #expect(!logs.all.contains { $0.contains(pan) })
                #expect(!(try await Self.everyTable(h)).contains(pan))
            }
            #expect(!logs.all.contains { $0.contains(WorkerHarness.sandboxMerchant.tokenizationKey) || $0.contains(RunningIntegrationServer.tokenizeSecret) })
        }
    }

    @Test func refusedRequestsGetAClearStatusAndNeverEchoTheCard() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1", mit: .off)
            let logs = LogRecorder()
            let server = try await RunningIntegrationServer.start(h, logger: logs.logger)
            defer { Task { await server.stop() } }
            let unknownPAN = "4000000000000002"
            let cases: [(String, [(String, String)], [UInt8], Int)] = [
                ("wrong secret", Self.auth("guess"), Self.request(), 401),
                ("no secret", [("Content-Type", "application/json")], Self.request(), 401),
                ("unknown merchant", Self.auth(), Self.request(merchant: "nobody"), 404),
                ("channel off", Self.auth(), Self.request(channel: "mit", origin: nil), 409),
                ("cit without origin", Self.auth(), Self.request(origin: nil), 422),
                ("card FlexCharge refuses", Self.auth(), Self.request(number: unknownPAN), 422),
                ("malformed body", Self.auth(), Array("{\"card\": {\"number\": \"\(unknownPAN)\"".utf8), 400),
            ]
            for (name, headers, body, status) in cases {
                let reply = try await server.post("/v1/tokenize", headers: headers, body: body)
                #expect(reply.status == status, "\(name): \(reply.body)")
                #expect(!reply.body.contains(unknownPAN) && !reply.body.contains(Self.pan), "\(name)")
            }
            #expect(!logs.all.contains { $0.contains(unknownPAN) || $0.contains(Self.pan) })
            #expect(!(try await Self.everyTable(h)).contains(unknownPAN))
        }
    }

    @Test func theTokenizerOpensOnlyTheTokenizationKey() async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let logs = LogRecorder()
            let server = try await RunningIntegrationServer.start(h, logger: logs.logger)
            defer { Task { await server.stop() } }
            // Garbage where the app key and secret are: opening either would fail the request.
            try await h.session.execute(
                "UPDATE flexcharge.merchant_credentials SET app_key_sealed = '\\x00'::bytea, app_secret_sealed = '\\x464f4f'::bytea")
            let sealer = try CredentialSealer(keyBytes: WorkerHarness.keyBytes)
            let sealed = try #require(try await SealedCredentials.load(.api, merchantID: "m1", environment: "sandbox", on: h.session).first)
            #expect(throws: CredentialError.self) { try sealer.apiCredentials(sealed) }

            let reply = try await server.post("/v1/tokenize", headers: Self.auth(), body: Self.request())
            #expect(reply.status == 200, "\(reply.body)")
            let tokenizer = CardTokenizer(session: h.session, sealer: sealer, clients: ["sandbox": server.client], logger: logs.logger)
            let vaulted = try await tokenizer.tokenize(
                CardToTokenize(firstName: "Joe", lastName: "Jones", number: "4242424242424242", month: "03", year: "2030"),
                merchantID: "m1", channel: "cit", origin: "website", site: "https://shop.example")
            #expect(!vaulted.token.isEmpty && vaulted.environment == "sandbox")
            let tokenizationOnly = try sealer.tokenizationCredentials(
                try #require(try await SealedCredentials.load(.tokenization, merchantID: "m1", environment: "sandbox", on: h.session).first))
            #expect(tokenizationOnly.appKey.isEmpty && tokenizationOnly.appSecret.isEmpty)
            #expect(tokenizationOnly.tokenizationKey == WorkerHarness.sandboxMerchant.tokenizationKey)

            // A tokenization key copied from the production row does not open in the sandbox row: 409, no token.
            try await h.session.execute(
                """
                UPDATE flexcharge.merchant_credentials t SET tokenization_key_sealed = s.tokenization_key_sealed
                  FROM flexcharge.merchant_credentials s
                 WHERE t.environment = 'sandbox' AND s.environment = 'production' AND s.merchant_id = t.merchant_id
                """)
            let moved = try await server.post("/v1/tokenize", headers: Self.auth(), body: Self.request())
            #expect(moved.status == 409, "\(moved.body)")
            #expect(!logs.all.contains { $0.contains(WorkerHarness.sandboxMerchant.tokenizationKey) || $0.contains(WorkerHarness.sandboxMerchant.appSecret) })
        }
    }

    @Test func onlyLoopbackPeersAreLoopback() throws {
        #expect(IntegrationServer.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(IntegrationServer.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(!IntegrationServer.isLoopback(try SocketAddress(ipAddress: "10.1.2.3", port: 1)))
        #expect(!IntegrationServer.isLoopback(try SocketAddress(ipAddress: "192.168.0.127", port: 1)))
        #expect(!IntegrationServer.isLoopback(nil))
    }
}
