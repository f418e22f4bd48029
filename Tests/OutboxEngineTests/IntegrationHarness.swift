import AsyncHTTPClient
import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import LibPQ
import Logging
import NIOCore
import NIOHTTP1
@testable import OutboxEngine
@testable import OutboxServers
import ServiceLifecycle
import TestSupport

/// `flexcharge-outbox serve` in-process (webhooks and tokenization) on a free loopback port.
struct RunningIntegrationServer {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, Never>
    let client: FlexChargeClient

    var webhookURL: String { "http://127.0.0.1:\(port)/webhooks/flexcharge" }
    var host: String { "127.0.0.1:\(port)" }

    static let webhookKey = Data("integration-test-webhook-subscriber-key".utf8).base64EncodedString()
    static let tokenizeSecret = "tokenize-shared-secret-for-tests"

    static func start(_ h: WorkerHarness, clockSkew: Duration = .seconds(300), logger: Logger = WorkerHarness.silent) async throws -> RunningIntegrationServer {
        let sealer = try CredentialSealer(keyBytes: WorkerHarness.keyBytes)
        let client = FlexChargeClient(environment: h.sandbox.environment, logger: logger)
        let session = h.db.session("integration")
        let configuration = IntegrationServer.Configuration(host: "127.0.0.1", port: 0, tokenizeSecret: tokenizeSecret,
                                                            clockSkew: clockSkew)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = IntegrationServer.application(
            configuration: configuration,
            webhooks: WebhookReceiver(session: session, sealer: sealer, clockSkew: clockSkew, logger: logger),
            tokenizer: CardTokenizer(session: session, sealer: sealer, clients: ["sandbox": client, "production": client], logger: logger),
            logger: logger) { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }
        let group = ServiceGroup(configuration: .init(services: [app], logger: WorkerHarness.silent))
        let task = Task { do { try await group.run() } catch { continuation.finish() }; await session.close() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw TestSupportError("integration server did not start") }
        return RunningIntegrationServer(port: port, group: group, task: task, client: client)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
        try? await client.shutdown()
    }

    /// POSTs raw bytes; returns the status and body.
    func post(_ path: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }
}

extension WorkerHarness {
    /// Enrols `merchantID` with a webhook subscriber key in both environments.
    func enrolWithWebhookKey(_ merchantID: String, key: String = RunningIntegrationServer.webhookKey, mit: ChannelSwitch = .sandbox,
                             citWebsite: ChannelSwitch = .sandbox) async throws {
        let store = MerchantStore(session: session, actor: "test")
        try await store.add(merchantID, name: nil, switches: [.citWebsite: citWebsite, .citCallCenter: .sandbox, .mit: mit])
        let secrets = MerchantSecrets(appKey: Self.sandboxMerchant.appKey, appSecret: Self.sandboxMerchant.appSecret,
                                      tokenizationKey: Self.sandboxMerchant.tokenizationKey, webhookKey: key)
        let sealer = try CredentialSealer(keyBytes: Self.keyBytes)
        for environment in ["sandbox", "production"] {
            try await store.setCredentials(merchantID, environment: environment, mid: Self.sandboxMerchant.mid, secrets: secrets, sealer: sealer)
        }
    }
}
