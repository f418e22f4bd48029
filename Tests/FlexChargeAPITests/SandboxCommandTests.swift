import FlexChargeAPI
import Foundation
import Logging
import Testing
import TestSupport

/// The `flexcharge-sandbox` command line passes the lookup-fidelity modes on (issue 16).
@Suite struct SandboxCommandTests {
    static let demo = MerchantCredentials(mid: "00000000-0000-4000-8000-000000000001", appKey: "demo-app-key",
                                          appSecret: "demo-app-secret", tokenizationKey: "demo-tokenization-key")

    /// `--order-search name --reference-numbers generated`: `query` is a payer-name search and `referenceNumber` is
    /// FlexCharge's own, so the client's lookup cannot identify the order and says so.
    @Test func orderSearchAndReferenceNumberFlagsReachTheSimulator() async throws {
        let port = try freeTCPPort()
        try await withChildProcess(PackagePaths.executable("flexcharge-sandbox"),
                                   ["--port", String(port), "--log-level", "warning", "--order-search", "name",
                                    "--reference-numbers", "generated"]) { sandbox in
            let client = FlexChargeClient(environment: .local(port: port),
                                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { Task { try? await client.shutdown() } }
            let evaluate = try await Self.whenListening(sandbox) {
                try await client.evaluate(body: Array(Self.evaluateBody(orderId: "CLI-1").utf8), credentials: Self.demo)
            }
            let id = try #require(evaluate.body.orderId)
            #expect(try await client.orders(query: OrdersQuery(query: "CLI-1"), credentials: Self.demo).body.items.isEmpty)
            #expect(try await client.orders(query: OrdersQuery(query: "jones"), credentials: Self.demo).body.items.map(\.id) == [id])
            #expect(try await client.order(id: id, credentials: Self.demo).body.referenceNumber?.hasPrefix("FC-") == true)
            let identity = OrderIdentity(merchantOrderId: "CLI-1", placedAfter: Date().addingTimeInterval(-300), amountCents: 1500,
                                         currency: "USD", email: "cli@example.com", firstName: "Joe", lastName: "Jones")
            guard case .unresolved = try await client.findOrder(identity, credentials: Self.demo) else {
                Issue.record("the lookup trusted a partial match")
                return
            }
        }
    }

    @Test(arguments: [("--order-search", "reference"), ("--reference-numbers", "opaque")])
    func anUnknownModeIsAUsageError(option: String, value: String) async throws {
        let result = try await withChildProcess(PackagePaths.executable("flexcharge-sandbox"), ["--port", "0", option, value]) {
            await $0.wait()
        }
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(option) expects"))
    }

    /// Retries `call` while the sandbox is still starting (connection refused), for up to 60 s.
    static func whenListening<T>(_ sandbox: ChildProcess, _ call: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try await call()
            } catch let error as FlexChargeError where ContinuousClock.now < deadline && error.httpStatus == nil {
                try #require(sandbox.isRunning, "flexcharge-sandbox exited: \(sandbox.stderr)")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    static func evaluateBody(orderId: String) -> String {
        """
        {"mid":"\(demo.mid)","orderId":"\(orderId)","idempotencyKey":"\(UUID().uuidString)","isDeclined":true,"isMIT":false,
         "transaction":{"id":"psp-1","amount":1500,"currency":"USD","responseCode":"05","responseCodeSource":"NMI",
          "avsResultCode":"M","cvvResultCode":"M","cavvResultCode":"NA"},
         "payer":{"email":"cli@example.com"},
         "billingInformation":{"firstName":"Joe","lastName":"Jones","country":"United States","countryCode":"US",
          "addressLine1":"1 Main St","city":"Austin","state":"TX","zipcode":"78701"},
         "paymentMethod":{"cardNumber":"4000002760003184","token":false,"holderName":"Joe Jones"}}
        """
    }
}
