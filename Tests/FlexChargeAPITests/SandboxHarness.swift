import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Logging
import AsyncHTTPClient
import NIOHTTP1
import NIOCore

/// A sandbox served on an ephemeral loopback port plus a client pointed at it.
struct SandboxHarness {
    static let merchant = SandboxMerchant(
        mid: "11111111-1111-4111-8111-111111111111", appKey: "test-app-key-0001", appSecret: "s3cr3t-APP-secret-value",
        tokenizationKey: "tok-key-value-9876", mitMode: .managed, webhookSubscriberKey: Data("webhook-key".utf8).base64EncodedString())
    static let syncMerchant = SandboxMerchant(
        mid: "22222222-2222-4222-8222-222222222222", appKey: "sync-app-key", appSecret: "sync-secret",
        tokenizationKey: "sync-tok", mitMode: .sync)

    let running: RunningSandbox
    let client: FlexChargeClient
    var sandbox: FlexChargeSandbox { running.sandbox }
    let credentials = MerchantCredentials(mid: merchant.mid, appKey: merchant.appKey, appSecret: merchant.appSecret,
                                          tokenizationKey: merchant.tokenizationKey)
    let syncCredentials = MerchantCredentials(mid: syncMerchant.mid, appKey: syncMerchant.appKey,
                                              appSecret: syncMerchant.appSecret)

    /// Runs `body` against a fresh sandbox and client, then shuts both down.
    static func with(
        configure: (inout SandboxConfiguration) -> Void = { _ in },
        requestTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (SandboxHarness) async throws -> Void
    ) async throws {
        var configuration = SandboxConfiguration(merchants: [merchant, syncMerchant], port: 0)
        configure(&configuration)
        let running = try await SandboxServer.start(FlexChargeSandbox(configuration: configuration, logger: logger), logger: logger)
        let client = FlexChargeClient(environment: running.environment,
                                      configuration: .init(connectTimeout: .seconds(10), requestTimeout: requestTimeout),
                                      logger: logger)
        let harness = SandboxHarness(running: running, client: client)
        do {
            try await body(harness)
        } catch {
            try? await client.shutdown()
            await running.stop()
            throw error
        }
        try await client.shutdown()
        await running.stop()
    }

    /// A valid CIT `/evaluate` request; tweak fields per test.
    func evaluateRequest(orderId: String = UUID().uuidString, key: String = UUID().uuidString, amount: Int = 1500,
                         card: String = "4000002760003184", email: String = "shopper@example.com", phone: String? = nil,
                         isMIT: Bool = false, expiry: Date? = nil, transactionType: String? = nil) -> EvaluateRequest {
        EvaluateRequest(
            mid: credentials.mid, orderId: orderId, idempotencyKey: key, isMIT: isMIT,
            transaction: TransactionDetails(id: "psp-1", amount: amount, responseCode: "05", responseCodeSource: "NMI"),
            payer: Payer(email: email, phone: phone),
            billingInformation: Address(firstName: "Joe", lastName: "Jones", country: "United States", countryCode: "US",
                                        addressLine1: "1 Main St", city: "Austin", state: "TX", zipcode: "78701"),
            paymentMethod: PaymentMethodDetails(cardNumber: card, token: false, holderName: "Joe Jones"),
            transactionType: transactionType,
            expiryDateUtc: expiry.map { $0.formatted(Date.ISO8601FormatStyle()) })
    }

    /// The JSON bytes of an `/evaluate` request, with `edit` applied to its JSON object.
    func evaluateBody(_ request: EvaluateRequest, edit: (inout [String: Any]) -> Void = { _ in }) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as! [String: Any]
        edit(&object)
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}

/// Runs `body` and returns the ``FlexChargeError`` it throws (nil if it did not throw one).
func flexChargeError(_ body: () async throws -> Void) async -> FlexChargeError? {
    do {
        try await body()
        return nil
    } catch let error as FlexChargeError {
        return error
    } catch {
        return nil
    }
}

extension SandboxHarness {
    /// A plain HTTP call to the sandbox (control API, or API calls the client would never make); returns the status.
    func rawStatus(_ method: String, _ path: String, authorization: String? = nil) async throws -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(running.port)/\(path)")
        request.method = HTTPMethod(rawValue: method)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        // Generous: with every suite running in parallel on two cores, a 5 s deadline was once missed.
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }
}

extension SandboxHarness {
    /// A plain HTTP call with a JSON body; returns the status and the answer parsed as a JSON object (nil if it is not one).
    func rawJSON(_ method: String, _ path: String, authorization: String? = nil, body: [String: Any]? = nil) async throws
        -> (status: Int, object: [String: Any]?) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(running.port)/\(path)")
        request.method = HTTPMethod(rawValue: method)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any]
        return (Int(response.status.code), object)
    }

    /// A bearer token for the harness merchant, taken over plain HTTP (`Bearer <token>`), and the whole token answer.
    func rawToken(appKey: String = SandboxHarness.merchant.appKey, appSecret: String = SandboxHarness.merchant.appSecret) async throws
        -> (header: String, answer: [String: Any]) {
        let (status, answer) = try await rawJSON("POST", "v1/oauth2/token", body: ["AppKey": appKey, "AppSecret": appSecret])
        guard status == 200, let answer, let token = answer["accessToken"] as? String else {
            throw FlexChargeError(failureClass: .permanent, route: "POST /oauth2/token", message: "no token (HTTP \(status))")
        }
        return ("Bearer \(token)", answer)
    }
}
