import OutboxConsole
import Testing
import TestSupport

/// The console's connections are bounded like `serve`'s (HTTPServerGuards): a slow sender is cut off at the
/// read timeout, an idle connection closes at the idle timeout, and the console keeps answering.
@Suite struct ConnectionLimitsTests {
    @Test func slowSendersAndIdleConnectionsAreClosedWithinTheirTimeouts() async throws {
        try await RunningConsole.with({ $0.connections = ConsoleConnectionLimits(readTimeout: .seconds(1), idleTimeout: .seconds(2)) }) { console in
            // Slow loris: a header line every 300 ms, never the blank line that ends the head.
            let slowHead = try await RawConnection.open(port: console.port)
            try await slowHead.send("GET /login HTTP/1.1\r\nHost: x\r\n")
            let idle = try await RawConnection.open(port: console.port)
            let closedAt = await RawConnection.closeTimes(
                [("slow head", slowHead, "X-Drip: 1\r\n"), ("idle", idle, nil)], within: .seconds(20))
            print("ConnectionLimitsTests: closed after \(closedAt)")
            // Without the limits both would stay open for the whole 20 s; generous bounds, as every suite runs at once.
            let slowHeadClosed = try #require(closedAt["slow head"], "a slow head must be cut off")
            let idleClosed = try #require(closedAt["idle"], "an idle connection must be closed")
            #expect(slowHeadClosed <= .seconds(12))
            #expect(idleClosed >= .milliseconds(1500) && idleClosed <= .seconds(12))
            #expect(console.logs.all.contains { $0.contains("request not received within the read timeout") })
            // The console still answers.
            let page = try await RawConnection.open(port: console.port)
            try await page.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await page.waitForResponse(timeout: .seconds(10))?.hasPrefix("HTTP/1.1 200") == true)
            await page.close()
        }
    }
}
