@testable import FlexChargeAPI
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The cap on connections per endpoint, against a real loopback server that counts the connections it sees: calls
/// beyond the cap wait in order; a waiting call that reaches its deadline, is cancelled or meets a shutdown ends
/// retryable with nothing sent; no slot is lost on any path, so later bursts still get the full cap.
///
/// The server holds requests at a gate the test opens, so "the cap is full and the rest wait" is a state the test
/// waits for, not a race it hopes to win.
@Suite struct HTTP1TransportCapTests {
    static let ok = ScriptServer.response(body: #"{"success":true}"#)

    static func capped(_ limit: Int) -> HTTP1Transport.Configuration {
        .init(connectTimeout: .seconds(10), maximumConnectionsPerEndpoint: limit)
    }

    /// One exchange whose body names `id` (the server's record of what it received).
    private func post(_ id: String, _ server: ScriptServer, _ transport: HTTP1Transport,
                      timeout: Duration = .seconds(60)) async -> Result<HTTPExchange.Reply, FlexChargeError> {
        let exchange = HTTPExchange(method: .POST, url: "http://127.0.0.1:\(server.port)/v1/transmit", route: "POST /transmit",
                                    headers: ["Content-Type": "application/json"], body: Array(#"{"orderId":"\#(id)"}"#.utf8))
        do {
            return .success(try await exchange.perform(on: transport, timeout: timeout))
        } catch {
            return .failure(error)
        }
    }

    /// `count` calls at once, ids `prefix-0`...; their outcomes in the order they ended.
    private func burst(_ prefix: String, _ count: Int, _ server: ScriptServer, _ transport: HTTP1Transport)
        async -> [Result<HTTPExchange.Reply, FlexChargeError>] {
        await withTaskGroup(of: Result<HTTPExchange.Reply, FlexChargeError>.self) { group in
            for index in 0..<count { group.addTask { await post("\(prefix)-\(index)", server, transport) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Ids of the requests the server received, in order.
    private func received(_ server: ScriptServer) -> [String] {
        server.requests.compactMap { request in
            request.range(of: #"{"orderId":""#).map { String(request[$0.upperBound...].prefix { $0 != "\"" }) }
        }
    }

    @Test func fortyCallsThroughACapOfFourNeverOpenMoreThanFour() async throws {
        try await ScriptServer.with({ _ in [.gate(0), .pause(milliseconds: 5), .write(Self.ok)] }, configuration: Self.capped(4)) { server, transport in
            let results = Task { await burst("o", 40, server, transport) }
            // Four requests in, held at the server; the other 36 wait in the transport.
            try await eventually { server.requests.count == 4 && transport.waitingCalls == 36 }
            #expect(server.openConnections == 4)
            #expect(transport.openConnections == 4)
            server.openGate()
            let replies = await results.value
            #expect(replies.count == 40)
            for result in replies {
                if case .failure(let error) = result { Issue.record("a call failed: \(error)") }
            }
            #expect(server.peakOpenConnections == 4, "never more than the cap, and the cap used")
            #expect(server.connections == 4, "kept-alive connections handed from call to call, none reopened")
            #expect(Set(received(server)).count == 40, "every call sent exactly once")
            #expect(transport.waitingCalls == 0)
            #expect(transport.openConnections == 4 && transport.idleConnections == 4)
        }
    }

    @Test func waitingCallsAreServedInTheirOrder() async throws {
        try await ScriptServer.with({ _ in [.gate(0), .write(Self.ok)] }, configuration: Self.capped(1)) { server, transport in
            var calls: [Task<Result<HTTPExchange.Reply, FlexChargeError>, Never>] = []
            for index in 0..<8 {
                calls.append(Task { await post("o-\(index)", server, transport) })
                // The next call starts once this one holds the connection or waits behind the others.
                try await eventually { server.requests.count == 1 && transport.waitingCalls == index }
            }
            server.openGate()
            for call in calls {
                if case .failure(let error) = await call.value { Issue.record("a call failed: \(error)") }
            }
            #expect(received(server) == (0..<8).map { "o-\($0)" })
            #expect(server.connections == 1)
        }
    }

    @Test func aWaitingCallPastItsDeadlineIsRetryableAndNothingWasSent() async throws {
        try await ScriptServer.with({ _ in [.gate(0), .write(Self.ok)] }, configuration: Self.capped(1)) { server, transport in
            let first = Task { await post("first", server, transport) }
            try await eventually { server.requests.count == 1 }
            // Only its deadline can end this one: the only connection is held at the gate.
            guard case .failure(let error) = await post("late", server, transport, timeout: .seconds(1)) else {
                Issue.record("a call waiting for a held connection succeeded")
                return
            }
            #expect(error.failureClass == .retryable, "never written, so never acted on: \(error)")
            #expect(error.message.contains("deadline"), "\(error.message)")
            #expect(transport.waitingCalls == 0)
            server.openGate()
            guard case .success = await first.value else { Issue.record("the first call failed"); return }
            guard case .success = await post("after", server, transport) else { Issue.record("the call after failed"); return }
            #expect(received(server) == ["first", "after"], "the expired call sent nothing")
            #expect(server.connections == 1 && transport.openConnections == 1)
        }
    }

    @Test func cancellingWaitingAndRunningCallsLeavesNoSlotTaken() async throws {
        try await ScriptServer.with({ index in [.gate(index < 2 ? 0 : 1), .write(Self.ok)] },
                                    configuration: Self.capped(2)) { server, transport in
            let running = (0..<2).map { index in Task { await post("running-\(index)", server, transport) } }
            try await eventually { server.requests.count == 2 }
            let waiting = (0..<3).map { index in Task { await post("waiting-\(index)", server, transport) } }
            try await eventually { transport.waitingCalls == 3 }
            for call in waiting { call.cancel() }
            for call in waiting {
                guard case .failure(let error) = await call.value else { Issue.record("a cancelled waiting call succeeded"); continue }
                #expect(error.failureClass == .retryable, "\(error)")
                #expect(error.message.contains("cancelled"), "\(error.message)")
            }
            #expect(transport.waitingCalls == 0)
            // Cancelled mid-request: written, so ambiguous; its connection closes and frees the slot.
            running[0].cancel()
            guard case .failure(let error) = await running[0].value else { Issue.record("a cancelled running call succeeded"); return }
            #expect(error.failureClass == .ambiguous, "\(error)")
            try await eventually { transport.openConnections == 1 && server.openConnections == 1 }
            server.openGate()
            guard case .success = await running[1].value else { Issue.record("the other running call failed"); return }
            // Both slots are there again: two later calls held at the server at once, four waiting.
            let more = (0..<6).map { index in Task { await post("more-\(index)", server, transport) } }
            try await eventually { server.heldAt(1) == 2 && transport.waitingCalls == 4 }
            server.openGate(1)
            for call in more {
                if case .failure(let error) = await call.value { Issue.record("a later call failed: \(error)") }
            }
            #expect(server.peakOpenConnections == 2)
            #expect(!received(server).contains { $0.hasPrefix("waiting-") }, "cancelled while waiting: nothing sent")
            #expect(transport.openConnections <= 2 && transport.waitingCalls == 0)
        }
    }

    @Test func slotsFreedByServerClosesServeTheNextBurstWithinTheCap() async throws {
        // The first 40 requests: the server reads each and closes the connection (ambiguous: written, no answer),
        // some at once, some after a moment, some with a reset. Then 40 ordinary calls.
        try await ScriptServer.with({ index in
            switch index {
            case ..<40 where index % 3 == 0: [.close]
            case ..<40 where index % 3 == 1: [.pause(milliseconds: 10), .close]
            case ..<40: [.reset]
            default: [.gate(0), .write(Self.ok)]
            }
        }, configuration: Self.capped(4)) { server, transport in
            let failures = await burst("fail", 40, server, transport)
            for result in failures {
                guard case .failure(let error) = result else { Issue.record("a call the server hung up on succeeded"); continue }
                #expect(error.failureClass == .ambiguous, "\(error)")
            }
            #expect(server.requests.count == 40, "each sent once, none resent after being written")
            try await eventually { transport.openConnections == 0 && server.openConnections == 0 }
            let calls = Task { await burst("ok", 40, server, transport) }
            // All four slots are free again: four held at the server at once, the rest waiting.
            try await eventually { server.heldAt(0) == 4 && transport.waitingCalls == 36 }
            server.openGate()
            let replies = await calls.value
            #expect(replies.count == 40)
            for result in replies {
                if case .failure(let error) = result { Issue.record("a call after the failures failed: \(error)") }
            }
            #expect(server.peakOpenConnections <= 4)
            #expect(server.requests.count == 80)
            #expect(transport.openConnections <= 4 && transport.waitingCalls == 0)
        }
    }

    @Test func shutdownFailsWaitingCallsAtOnce() async throws {
        try await ScriptServer.with({ _ in [.gate(0), .write(Self.ok)] }, configuration: Self.capped(1)) { server, transport in
            let running = Task { await post("running", server, transport) }
            try await eventually { server.requests.count == 1 }
            let waiting = (0..<3).map { index in Task { await post("waiting-\(index)", server, transport, timeout: .seconds(600)) } }
            try await eventually { transport.waitingCalls == 3 }
            await transport.shutdown()
            for call in waiting {
                guard case .failure(let error) = await call.value else { Issue.record("a waiting call outlived shutdown"); continue }
                #expect(error.failureClass == .retryable, "\(error)")
                #expect(error.message.contains("shut down"), "\(error.message)")
            }
            // The call in flight finishes; its connection is closed after it, not kept.
            server.openGate()
            guard case .success = await running.value else { Issue.record("the running call failed"); return }
            try await eventually { transport.openConnections == 0 && server.openConnections == 0 }
            #expect(received(server) == ["running"])
        }
    }

    @Test func aClientOwningItsTransportCapsItWithMaximumConnectionsPerHost() async throws {
        let environment = FlexChargeEnvironment(name: .sandbox, baseURL: "http://127.0.0.1:1/v1/")
        let client = FlexChargeClient(environment: environment, configuration: .init(maximumConnectionsPerHost: 3))
        #expect(client.transport.configuration.maximumConnectionsPerEndpoint == 3)
        try await client.shutdown()
    }

    @Test func aCapBelowOneMeansOneConnection() async throws {
        try await ScriptServer.with({ _ in [.pause(milliseconds: 5), .write(Self.ok)] }, configuration: Self.capped(0)) { server, transport in
            let replies = await burst("o", 5, server, transport)
            for result in replies {
                if case .failure(let error) = result { Issue.record("a call failed: \(error)") }
            }
            #expect(server.peakOpenConnections == 1 && server.connections == 1)
        }
    }
}
