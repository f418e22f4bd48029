import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import Logging
@testable import OutboxEngine
import ServiceLifecycle
import TestSupport

/// A migrated database, one or two running sandboxes (sandbox and production), and helpers to
/// insert events as the gateway does and to run a worker in-process.
struct WorkerHarness {
    static let sandboxMerchant = SandboxMerchant(
        mid: "33333333-3333-4333-8333-333333333333", appKey: "worker-test-app-key", appSecret: "worker-test-SECRET-value",
        tokenizationKey: "worker-test-tokenization-key", mitMode: .managed)
    static let keyBytes: [UInt8] = Array(repeating: 7, count: 32)
    static var keyBase64: String { Data(keyBytes).base64EncodedString() }
    static let silent = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    let db: TestDatabase
    let session: PGSession
    let sandbox: RunningSandbox
    let production: RunningSandbox?

    static func with(
        productionSandbox: Bool = false, configure: (inout SandboxConfiguration) -> Void = { _ in },
        _ body: (WorkerHarness) async throws -> Void
    ) async throws {
        try await TestDatabase.with { db in
            var configuration = SandboxConfiguration(merchants: [sandboxMerchant], port: 0)
            configure(&configuration)
            let sandbox = try await SandboxServer.start(FlexChargeSandbox(configuration: configuration, logger: silent), logger: silent)
            var productionConfiguration = configuration
            productionConfiguration.isTestMode = false  // it plays FlexCharge's production environment
            let production = productionSandbox
                ? try await SandboxServer.start(FlexChargeSandbox(configuration: productionConfiguration, logger: silent), logger: silent) : nil
            let harness = WorkerHarness(db: db, session: db.session(), sandbox: sandbox, production: production)
            do {
                try await body(harness)
            } catch {
                await harness.close()
                throw error
            }
            await harness.close()
        }
    }

    private func close() async {
        await session.close()
        await sandbox.stop()
        await production?.stop()
    }

    /// Enrols a merchant with sandbox (and production) credentials of the test sandbox merchant.
    func enrol(_ merchantID: String, citWebsite: ChannelSwitch = .sandbox, citCallCenter: ChannelSwitch = .sandbox,
               mit: ChannelSwitch = .sandbox) async throws {
        let store = MerchantStore(session: session, actor: "test")
        try await store.add(merchantID, name: nil, switches: [.citWebsite: citWebsite, .citCallCenter: citCallCenter, .mit: mit])
        let secrets = MerchantSecrets(appKey: Self.sandboxMerchant.appKey, appSecret: Self.sandboxMerchant.appSecret,
                                      tokenizationKey: Self.sandboxMerchant.tokenizationKey)
        let sealer = try CredentialSealer(keyBytes: Self.keyBytes)
        for environment in ["sandbox", "production"] {
            try await store.setCredentials(merchantID, environment: environment, mid: Self.sandboxMerchant.mid, secrets: secrets, sealer: sealer)
        }
    }

    /// Inserts one event with plain SQL, as the gateway does; returns its id.
    @discardableResult
    func insert(_ kind: String, merchant: String = "m1", order: String, channel: String = "cit", origin: String? = "website",
                site: String? = "https://shop.example", descriptor: String? = nil, payload: String) async throws -> Int64 {
        try await session.query(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING id
            """,
            [kind, merchant, order, channel, channel == "mit" ? nil : origin, site, descriptor, PGJSON(text: payload)]
        ).first!.decode("id")
    }

    func approvedCITEvaluate(order: String, amount: Int = 1500) -> String {
        SamplePayloads.evaluate(orderID: order, amountCents: amount, payerEmail: "approve-\(order)@example.com", mit: false)
    }

    /// A worker configuration pointing at the test sandboxes, with quick retries.
    func configuration(concurrency: Int = 16, maxAttempts: Int = 5, lease: Duration = .seconds(30)) -> WorkerConfiguration {
        var environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment] = [
            .sandbox: FlexChargeEnvironment(name: .sandbox, baseURL: sandbox.environment.baseURL)
        ]
        environments[.production] = FlexChargeEnvironment(
            name: .production, baseURL: (production ?? sandbox).environment.baseURL)
        return WorkerConfiguration(
            workerID: "test-worker-\(UUID().uuidString.prefix(6))", concurrency: concurrency, batchSize: 64, reservedForCIT: 2,
            lease: lease, pollInterval: .milliseconds(100),
            retryPolicy: RetryPolicy(backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(200)), maxAttempts: maxAttempts),
            drainGracePeriod: .seconds(5), environments: environments,
            client: FlexChargeClientConfiguration(connectTimeout: .seconds(5), requestTimeout: .seconds(15)))
    }

    /// Runs a worker while `body` runs, then shuts it down gracefully.
    func runWorker<T>(_ configuration: WorkerConfiguration? = nil, logger: Logger = silent, while body: () async throws -> T) async throws -> T {
        let worker = OutboxWorker(
            configuration: configuration ?? self.configuration(), database: db.configuration,
            sealer: try CredentialSealer(keyBytes: Self.keyBytes), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [worker], logger: Self.silent))
        let running = Task { try await group.run() }
        do {
            let value = try await body()
            await group.triggerGracefulShutdown()
            try await running.value
            return value
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
    }

    /// Polls until the SQL returns a row whose first column is true.
    func waitUntil(_ sql: String, _ parameters: [any PGEncodable] = [], timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await session.query(sql, parameters).first?.decode(0, as: Bool.self) == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("timed out waiting for: \(sql)")
    }

    /// Waits until no event is pending or running.
    func waitUntilSettled(timeout: Duration = .seconds(20)) async throws {
        try await waitUntil("SELECT count(*) = 0 FROM flexcharge.outbox WHERE state IN ('pending', 'running')", timeout: timeout)
    }

    /// One event's row.
    func event(_ id: Int64) async throws -> PGRow {
        try await session.query("SELECT * FROM flexcharge.outbox WHERE id = $1", [id]).first!
    }

    /// The attempt ledger of one event, in order.
    func attempts(_ id: Int64) async throws -> [PGRow] {
        try await session.query("SELECT * FROM flexcharge.attempts WHERE event_id = $1 ORDER BY id", [id]).rows
    }
}
