import CLibPQ
import Foundation
import Synchronization

/// How long one statement may keep its caller waiting, and what happens when the caller's task is
/// cancelled. Pure state: ``PGRawConnection`` asks it at every poll slice what to do next, and
/// `StatementWaitTests` drive it with made-up clocks.
///
/// - The deadline (`giveUpAfter`) is client-side: once it passes, the server has not answered at
///   all (its own `statement_timeout` fires earlier and answers with SQLSTATE 57014), so a cancel
///   request is sent and the connection is closed: the caller gets a connection error.
/// - A cancelled task sends a cancel request at once; the server's answer (57014) is reported as
///   a ``PGError/Kind/cancelled`` error and the connection stays usable. If the server has not
///   answered within ``PGConfiguration/cancelGrace``, the connection is closed.
struct StatementWait: Sendable {
    enum Step: Equatable {
        case keepWaiting
        /// Send the server a cancel request (once).
        case sendCancel
        /// Close the connection and throw this error.
        case giveUp(PGError)
    }

    /// The client-side bound given (nil: none).
    let limit: Duration?
    /// Whether a cancelled task cancels the statement (not for ROLLBACK after a failure).
    let cancellable: Bool
    private(set) var giveUpAt: ContinuousClock.Instant?
    /// The awaiting task was cancelled and a cancel request was sent.
    private(set) var cancelledByTask = false

    init(giveUpAfter limit: Duration?, cancellable: Bool, now: ContinuousClock.Instant) {
        self.limit = limit
        self.cancellable = cancellable
        self.giveUpAt = limit.map { now + $0 }
    }

    mutating func step(now: ContinuousClock.Instant, taskCancelled: Bool) -> Step {
        if cancellable && taskCancelled && !cancelledByTask {
            cancelledByTask = true
            let graceEnd = now + PGConfiguration.cancelGrace
            giveUpAt = giveUpAt.map { min($0, graceEnd) } ?? graceEnd
            return .sendCancel
        }
        guard let giveUpAt, now >= giveUpAt else { return .keepWaiting }
        if cancelledByTask {
            return .giveUp(PGError(
                .cancelled,
                "the statement's task was cancelled and PostgreSQL did not answer the cancel request within \(PGConfiguration.cancelGrace); the connection was closed"))
        }
        return .giveUp(PGError(
            .connection,
            "PostgreSQL did not answer within \(limit ?? .zero); the connection was closed (server stopped, overloaded or unreachable; the statement may still run when it resumes)"))
    }

    /// How long the next `poll` may sleep: up to 100 ms, less when the deadline is nearer.
    func pollMilliseconds(now: ContinuousClock.Instant) -> Int32 {
        guard let giveUpAt else { return 100 }
        return Int32(max(1, min(100, (giveUpAt - now).milliseconds)))
    }

    /// The server's "canceling statement due to user request" after our own cancel request reads as
    /// a cancellation.
    func translate(_ error: PGError) -> PGError {
        guard cancelledByTask, error.sqlState == "57014" else { return error }
        return PGError(.cancelled, "the statement was cancelled because its task was", sqlState: "57014")
    }
}

/// Cancel requests in flight on threads of their own. `PQcancel` (libpq 15) connects to the server
/// and waits for it to close that connection, with no timeout: against a stopped server it waits
/// until the server resumes. At most `limit` run at once per server; beyond that a request to that
/// server is skipped (the statement's connection is being closed anyway). Counted per server, so
/// requests hanging on a stopped server never take the room of another server's.
enum CancelRequests {
    static let limit = 4
    private static let inFlight = Mutex<[String: Int]>([:])

    /// Requests in flight now, to every server (for tests).
    static var pending: Int { inFlight.withLock { $0.values.reduce(0, +) } }

    /// Takes ownership of `cancel` (from `PQgetCancel`) and frees it when done. `server` names the
    /// server it goes to (host and port).
    static func send(_ cancel: OpaquePointer, server: String) {
        let admitted = inFlight.withLock { counts in
            guard counts[server, default: 0] < limit else { return false }
            counts[server, default: 0] += 1
            return true
        }
        guard admitted else {
            PQfreeCancel(cancel)
            return
        }
        let request = CancelHandle(pointer: cancel)
        let thread = Thread {
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(request.pointer, &message, Int32(message.count))
            PQfreeCancel(request.pointer)
            inFlight.withLock { counts in
                counts[server, default: 1] -= 1
                if counts[server] == 0 { counts[server] = nil }
            }
        }
        thread.name = "flexcharge-pg-cancel"
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// A `PGcancel` handed from the session's thread to the cancel thread, which alone uses it.
    private struct CancelHandle: @unchecked Sendable {
        let pointer: OpaquePointer
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
