import FlexChargeAPI
import FlexChargeSandbox
import Foundation
@testable import LibPQ
import Logging
import NIOCore
import NIOPosix
@testable import OutboxEngine
@testable import OutboxServers
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

/// `serve`'s limits, over real sockets: read and idle timeouts, the connection cap, rate limits, the session
/// pool, and log lines that request-supplied text cannot forge.
@Suite struct ServeHardeningTests {
    @Test func slowSendersAndIdleConnectionsAreClosedWithinTheirTimeouts() async throws {
        let limits = IntegrationServer.Limits(readTimeout: .seconds(1), idleTimeout: .seconds(2))
        try await HardenedServer.with(limits: limits) { server in
            // Slow loris: a header line every 300 ms, never the blank line that ends the head.
            let slowHead = try await RawConnection.open(port: server.port)
            try await slowHead.send("POST /webhooks/flexcharge?merchant=m1 HTTP/1.1\r\nHost: x\r\n")
            // A complete head, then a body one byte at a time.
            let slowBody = try await RawConnection.open(port: server.port)
            try await slowBody.send("POST /webhooks/flexcharge?merchant=m1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            // Connected, silent.
            let idle = try await RawConnection.open(port: server.port)
            let closedAt = await RawConnection.closeTimes(
                [("slow head", slowHead, "X-Drip: 1\r\n"), ("slow body", slowBody, "a"), ("idle", idle, nil)], within: .seconds(20))
            print("ServeHardeningTests: closed after \(closedAt)")
            let slowHeadClosed = try #require(closedAt["slow head"], "a slow head must be cut off")
            let slowBodyClosed = try #require(closedAt["slow body"], "a slow body must be cut off")
            let idleClosed = try #require(closedAt["idle"], "an idle connection must be closed")
            // Read timeout 1 s, idle timeout 2 s; generous upper bounds, as every suite runs at once on two cores.
            // (Without the timeouts all three would stay open for the whole 20 s loop.)
            #expect(slowHeadClosed <= .seconds(12))
            #expect(slowBodyClosed <= .seconds(12))
            #expect(idleClosed >= .milliseconds(1500) && idleClosed <= .seconds(12))
            // The server still answers.
            #expect(try await server.get("/healthz").status == 200)
            #expect(server.logs.all.contains { $0.contains("request not received within the read timeout") })
        }
    }

    @Test func connectionsOverTheCapWaitUntilOneCloses() async throws {
        let limits = IntegrationServer.Limits(readTimeout: .seconds(30), idleTimeout: .seconds(30), maximumConnections: 2)
        try await HardenedServer.with(limits: limits) { server in
            let first = try await RawConnection.open(port: server.port)
            let second = try await RawConnection.open(port: server.port)
            try await first.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await first.waitForResponse(timeout: .seconds(5))?.hasPrefix("HTTP/1.1 200") == true)
            // A third connection is queued in the backlog: its request gets no answer while two are open.
            let third = try await RawConnection.open(port: server.port)
            try await third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await third.waitForResponse(timeout: .milliseconds(800)) == nil, "over the cap, nothing is served")
            await second.close()
            let answer = await third.waitForResponse(timeout: .seconds(15))
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true, "served once a connection closed")
            await first.close()
            await third.close()
        }
    }

    @Test func tokenizeAndWebhooksAreRateLimitedWith429AndRetryAfter() async throws {
        // One token every 20 s: even a cold, loaded CI machine cannot refill a bucket between the requests of
        // the test (one token every 5 s could: a first request took that long there).
        let limits = IntegrationServer.Limits(tokenizePerClient: .init(perSecond: 0.05, burst: 2), webhookPerClient: .init(perSecond: 0.05, burst: 3))
        try await HardenedServer.with(limits: limits) { server in
            var tokenizeStatuses: [Int] = []
            var retryAfter: String?
            for _ in 0..<5 {
                let reply = try await server.post("/v1/tokenize", headers: [("Authorization", "Bearer wrong")], body: "{}")
                tokenizeStatuses.append(reply.status)
                if reply.status == 429 { retryAfter = reply.headers["retry-after"] }
            }
            #expect(tokenizeStatuses.prefix(2).allSatisfy { $0 == 401 }, "\(tokenizeStatuses)")
            #expect(tokenizeStatuses.suffix(2).allSatisfy { $0 == 429 }, "\(tokenizeStatuses)")
            #expect(retryAfter.flatMap { Int($0) }.map { $0 >= 1 } == true)
            var webhookStatuses: [Int] = []
            for _ in 0..<6 {
                webhookStatuses.append(try await server.post("/webhooks/flexcharge?merchant=m1", headers: [], body: "{}").status)
            }
            #expect(webhookStatuses.prefix(3).allSatisfy { $0 == 401 }, "\(webhookStatuses)")
            #expect(webhookStatuses.last == 429, "\(webhookStatuses)")
            // The bucket refills: after its Retry-After the client is served again.
            try await Task.sleep(for: .milliseconds(20_500))
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: [], body: "{}").status == 401)
            #expect(server.logs.all.contains { $0.contains("rate limited") })
        }
    }

    @Test(arguments: [
        "m1%0A2026-12-01T00:00:00+0000%20critical%20flexcharge.serve%20:%20forged=1",
        "m1%0D%0Aforged",
        "m1%1B%5B31mred",
        "m1%E2%80%A8forged",
    ])
    func aForgedMerchantParameterProducesNoForgedLogLine(parameter: String) async throws {
        try await HardenedServer.with(limits: .init()) { server in
            let reply = try await server.post("/webhooks/flexcharge?merchant=\(parameter)", headers: [], body: "{}")
            #expect(reply.status == 400)
            let lines = server.logs.all
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1B}") && !line.contains("\u{2028}"),
                        "a raw control character reached a log line: \(SafeText.forLog(line, limit: 300))")
            }
            #expect(lines.contains { $0.contains("unusable merchant parameter") && $0.contains(#"\"#) })
        }
    }

    @Test func requestsShareThePoolAndGet503WhenNoSessionIsFree() async throws {
        let limits = IntegrationServer.Limits(databaseWait: .milliseconds(300))
        try await HardenedServer.with(limits: limits, poolSize: 2) { server in
            // Twenty at once over two sessions: all are answered (401: unsigned), none waits too long.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<20 {
                    group.addTask { try await server.post("/webhooks/flexcharge?merchant=m\(index % 3)", headers: [], body: "{}").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.count == 20)
            #expect(statuses.allSatisfy { $0 == 401 || $0 == 503 }, "\(statuses)")
            // Both sessions held elsewhere: the request waits 300 ms for one, then gets 503 with Retry-After.
            // Held until the request has been answered (a fixed 2 s could run out first on a loaded machine).
            let holding = Task {
                try await server.pool.withSession { _ in
                    try await server.pool.withSession { _ in try await Task.sleep(for: .seconds(30)) }
                }
            }
            while await server.pool.usage.leased < 2 { try await Task.sleep(for: .milliseconds(20)) }
            let started = ContinuousClock.now
            let reply = try await server.post("/webhooks/flexcharge?merchant=m1", headers: [], body: "{}")
            #expect(reply.status == 503)
            #expect(reply.headers["retry-after"] == "1")
            #expect(ContinuousClock.now - started < .seconds(5), "waited for the 300 ms lease timeout, not for the session")
            holding.cancel()
            _ = try? await holding.value
            #expect(try await server.post("/webhooks/flexcharge?merchant=m1", headers: [], body: "{}").status == 401)
            #expect(await server.pool.usage.waiting == 0)
        }
    }
}

/// The pieces on their own: token buckets and the pool's waiting line.
@Suite struct ServeLimitPartsTests {
    @Test func tokenBucketsAdmitTheBurstThenAskToWaitAndRefill() {
        let limiter = RateLimiter(perClient: .init(perSecond: 2, burst: 2), global: .init(perSecond: 0.001, burst: 3), maximumClients: 2)
        let start = ContinuousClock.now
        #expect(limiter.admit(client: "a", now: start) == nil)
        #expect(limiter.admit(client: "a", now: start) == nil)
        let wait = limiter.admit(client: "a", now: start)
        #expect(wait == .milliseconds(500), "one token every 500 ms at 2/s")
        #expect(limiter.admit(client: "a", now: start + .milliseconds(500)) == nil, "refilled")
        // The global bucket (burst 3) is nearly spent: another client is refused by it.
        #expect(limiter.admit(client: "b", now: start + .milliseconds(500)) != nil)
        // A tiny rate never overflows the wait.
        let slow = RateLimiter(perClient: .init(perSecond: 1e-300, burst: 1), global: .unlimited)
        #expect(slow.admit(client: "a") == nil)
        #expect(slow.admit(client: "a").map { $0 <= .seconds(3600) } == true)
        #expect(RateLimiter(perClient: .unlimited, global: .unlimited).admit(client: "x") == nil)
    }

    @Test func manyAddressesShareAnOverflowBucketInsteadOfGrowingWithoutBound() {
        let limiter = RateLimiter(perClient: .init(perSecond: 0.001, burst: 1), global: .unlimited, maximumClients: 10)
        let now = ContinuousClock.now
        var admitted = 0
        for index in 0..<1000 where limiter.admit(client: "10.0.0.\(index)", now: now) == nil { admitted += 1 }
        #expect(admitted == 11, "10 tracked addresses, then one shared bucket")
    }

    @Test func aCancelledOrTimedOutWaiterLeavesThePoolsLine() async throws {
        try await TestDatabase.with { db in
            // A cancelled waiter leaves the line (a long lease timeout, so only the cancellation can end its wait).
            let patient = PGPool(configuration: db.configuration, size: 1, name: "line", leaseTimeout: .seconds(60))
            let holding = Task { try await patient.withSession { _ in try await Task.sleep(for: .seconds(3)) } }
            while await patient.usage.leased == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let cancelled = Task { try await patient.withSession { _ in 1 } }
            while await patient.usage.waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            #expect(await patient.usage.waiting == 0)
            try await holding.value
            #expect(try await patient.withSession { try await $0.query("SELECT 1 AS one").first?.decode("one", as: Int32.self) } == 1)
            await patient.close()

            // A waiter past the lease timeout gives up with an error and leaves the line too.
            let hasty = PGPool(configuration: db.configuration, size: 1, name: "hasty", leaseTimeout: .milliseconds(300))
            let busy = Task { try await hasty.withSession { _ in try await Task.sleep(for: .seconds(6)) } }
            while await hasty.usage.leased == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let started = ContinuousClock.now
            await #expect(throws: PGError.self) { try await hasty.withSession { _ in 1 } }
            #expect(ContinuousClock.now - started < .seconds(4), "gave up after the 300 ms lease timeout")
            #expect(await hasty.usage.waiting == 0)
            busy.cancel()
            _ = try? await busy.value
            await hasty.close()
        }
    }
}

/// `serve` in-process on a free loopback port, with a session pool and recorded logs.
struct HardenedServer: Sendable {
    let port: Int
    let pool: PGPool
    let logs: LogRecorder

    static func with(limits: IntegrationServer.Limits, poolSize: Int = 2, _ body: (HardenedServer) async throws -> Void) async throws {
        try await WorkerHarness.with { h in
            try await h.enrol("m1")
            let logs = LogRecorder()
            let logger = logs.logger
            let sealer = try CredentialSealer(keyBytes: WorkerHarness.keyBytes)
            let pool = PGPool(configuration: h.db.configuration, size: poolSize, name: "serve-test", leaseTimeout: limits.databaseWait)
            let client = FlexChargeClient(environment: h.sandbox.environment, logger: logger)
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let app = IntegrationServer.application(
                configuration: .init(host: "127.0.0.1", port: 0, tokenizeSecret: RunningIntegrationServer.tokenizeSecret, limits: limits),
                pool: pool,
                webhooks: { WebhookReceiver(session: $0, sealer: sealer, logger: logger) },
                tokenizer: { CardTokenizer(session: $0, sealer: sealer, clients: ["sandbox": client], logger: logger) },
                logger: logger) { channel in
                    continuation.yield(channel.localAddress?.port ?? 0)
                    continuation.finish()
                }
            let group = ServiceGroup(configuration: .init(services: [app], logger: WorkerHarness.silent))
            let task = Task { do { try await group.run() } catch { continuation.finish() } }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw TestSupportError("serve did not start") }
            let server = HardenedServer(port: port, pool: pool, logs: logs)
            do {
                try await body(server)
            } catch {
                await group.triggerGracefulShutdown()
                await task.value
                await pool.close()
                try? await client.shutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            await task.value
            await pool.close()
            try await client.shutdown()
        }
    }

    /// One request on its own connection; the status, lower-cased headers and body.
    func request(_ head: String, body: String = "") async throws -> (status: Int, headers: [String: String], body: String) {
        let connection = try await RawConnection.open(port: port)
        defer { Task { await connection.close() } }
        try await connection.send(head + body)
        guard let text = await connection.waitForResponse(timeout: .seconds(10)) else { throw TestSupportError("no answer to \(head)") }
        let parts = text.components(separatedBy: "\r\n\r\n")
        let lines = parts[0].components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return (status, headers, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func get(_ path: String) async throws -> (status: Int, headers: [String: String], body: String) {
        try await request("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    }

    func post(_ path: String, headers: [(String, String)], body: String) async throws -> (status: Int, headers: [String: String], body: String) {
        var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return try await request(head + "\r\n", body: body)
    }
}
