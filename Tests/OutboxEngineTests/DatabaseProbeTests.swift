import Foundation
import LibPQ
@testable import OutboxEngine
import Synchronization
import Testing
import TestSupport

/// `/readyz`'s probe against a "database" that accepts connections and never answers (a process
/// stopped while connections come in): the probe is reported overdue at its deadline although libpq's
/// connect_timeout (30 s here, as an operator may set it) would let it wait far longer.
@Suite struct DatabaseProbeTests {
    @Test(.timeLimit(.minutes(1))) func aProbeStillConnectingIsReportedAtItsDeadline() async throws {
        let hole = try SilentListener()
        defer { hole.close() }
        let session = PGSession(configuration: PGConfiguration(
            url: "postgresql://probe:probe@127.0.0.1:\(hole.port)/probe?connect_timeout=30&sslmode=disable"))
        let reported = Mutex<(Duration, String)?>(nil)
        let started = ContinuousClock.now
        let probe = Task {
            try await DatabaseProbe.run(on: session, deadline: .seconds(1)) { overdue in
                reported.withLock { $0 = (ContinuousClock.now - started, "\(overdue)") }
            }
        }
        while reported.withLock({ $0 }) == nil, ContinuousClock.now - started < .seconds(20) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let (after, reason) = try #require(reported.withLock { $0 })
        #expect(after >= .seconds(1) && after < .seconds(4), "reported after \(after)")
        #expect(reason.hasPrefix("PostgreSQL did not answer within 1.0 seconds"), "\(reason)")
        #expect(hole.accepted > 0, "the probe never reached the listener")
        // The probe is still awaited (one at a time on its connection): it ends when the connection does.
        hole.close()
        await #expect(throws: PGError.self) { try await probe.value }
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aProbeAnsweredBeforeItsDeadlineIsNotReported() async throws {
        let session = PGSession(configuration: PGConfiguration(url: ProcessInfo.processInfo.environment["DATABASE_URL"]))
        let reported = Mutex(false)
        try await DatabaseProbe.run(on: session, deadline: .seconds(30)) { _ in reported.withLock { $0 = true } }
        #expect(!reported.withLock { $0 })
    }
}

/// A loopback TCP listener that accepts connections and never sends a byte.
private final class SilentListener: Sendable {
    let port: Int
    private let state: Mutex<(listener: Int32, connections: [Int32], accepted: Int, closed: Bool)>

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, let port = bindLoopback(fd), listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        self.port = port
        state = Mutex((fd, [], 0, false))
        let thread = Thread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }  // the listener was closed
                let keep = state.withLock { state -> Bool in
                    guard !state.closed else { return false }
                    state.connections.append(connection)
                    state.accepted += 1
                    return true
                }
                if !keep { Foundation.close(connection); return }
            }
        }
        thread.start()
    }

    var accepted: Int { state.withLock { $0.accepted } }

    func close() {
        let fds = state.withLock { state -> [Int32] in
            guard !state.closed else { return [] }
            state.closed = true
            return [state.listener] + state.connections
        }
        for fd in fds {
            shutdown(fd, Int32(SHUT_RDWR))
            Foundation.close(fd)
        }
    }
}
