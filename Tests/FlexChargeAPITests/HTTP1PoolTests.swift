@testable import FlexChargeAPI
import NIOCore
import NIOPosix
import Testing

/// ``HTTP1Pool``, the transport's connection book, driven directly: no sockets, only its decisions. The cap holds
/// on every path, waiters are served first come first served, a slot is freed exactly once, idle connections are
/// reused newest first until they expire, and a shut pool hands out nothing. (HTTP1TransportCapTests checks the
/// same rules end to end against a real server.)
@Suite struct HTTP1PoolTests {
    static let endpoint = HTTP1Endpoint(tls: false, host: "127.0.0.1", port: 8080)
    static let other = HTTP1Endpoint(tls: true, host: "api.example", port: 443)
    static let idleTimeout = TimeAmount.seconds(60)

    /// Holds the transport a connection needs (it never connects here).
    let transport = HTTP1Transport()

    func call(_ endpoint: HTTP1Endpoint = Self.endpoint) -> HTTP1Call {
        HTTP1Call(request: ByteBuffer(), endpoint: endpoint, deadline: .now() + .seconds(60))
    }

    func connection(_ endpoint: HTTP1Endpoint = Self.endpoint) -> HTTP1Connection {
        HTTP1Connection(transport: transport, endpoint: endpoint, loop: MultiThreadedEventLoopGroup.singleton.next())
    }

    func acquire(_ pool: inout HTTP1Pool, _ call: HTTP1Call, fresh: Bool = false, at now: NIODeadline = .now(),
                 expired: inout [HTTP1Connection]) -> HTTP1Pool.Acquired {
        pool.acquire(call, fresh: fresh, now: now, idleTimeout: Self.idleTimeout, expired: &expired)
    }

    /// Admits a new connection for a call that was told `.connect`.
    func admitted(_ pool: inout HTTP1Pool, _ endpoint: HTTP1Endpoint = Self.endpoint) -> HTTP1Connection {
        let connection = connection(endpoint)
        var next: HTTP1Call?
        #expect(pool.admit(connection, active: true, next: &next))
        #expect(next == nil)
        return connection
    }

    @Test func callsBeyondTheCapWaitAndAreServedInOrder() {
        var pool = HTTP1Pool(limit: 2)
        var expired: [HTTP1Connection] = []
        let calls = (0..<4).map { _ in call() }
        #expect(acquire(&pool, calls[0], expired: &expired).isConnect)
        #expect(acquire(&pool, calls[1], expired: &expired).isConnect)
        #expect(acquire(&pool, calls[2], expired: &expired).isQueued)
        #expect(acquire(&pool, calls[3], expired: &expired).isQueued)
        #expect(pool.openConnections == 2 && pool.waitingCalls == 2)

        // The first connection's exchange ends: it goes to the first waiter, not to the idle list.
        let first = admitted(&pool)
        #expect(pool.release(first, now: .now()).handedTo === calls[2])
        // The second connect fails: its slot goes to the next waiter, which connects for it.
        #expect(pool.connectFailed(Self.endpoint) === calls[3])
        #expect(pool.openConnections == 2 && pool.waitingCalls == 0)
        // Nobody waits: the slot is freed.
        #expect(pool.connectFailed(Self.endpoint) == nil)
        #expect(pool.openConnections == 1)
        #expect(pool.release(first, now: .now()).isKeptIdle)
        #expect(pool.idleConnections == 1)
    }

    @Test func aSlotIsFreedExactlyOnce() {
        var pool = HTTP1Pool(limit: 1)
        var expired: [HTTP1Connection] = []
        #expect(acquire(&pool, call(), expired: &expired).isConnect)
        let connection = admitted(&pool)
        #expect(pool.closed(connection) == nil)
        #expect(pool.openConnections == 0)
        // A second close of the same connection, and a release after it, change nothing.
        #expect(pool.closed(connection) == nil)
        #expect(pool.openConnections == 0)
        #expect(pool.release(connection, now: .now()).isClose)
        #expect(pool.openConnections == 0 && pool.idleConnections == 0)
        // A connect that completes on a channel already closed gives its slot back (here: to a waiter).
        #expect(acquire(&pool, call(), expired: &expired).isConnect)
        let waiter = call()
        #expect(acquire(&pool, waiter, expired: &expired).isQueued)
        var next: HTTP1Call?
        #expect(!pool.admit(self.connection(), active: false, next: &next))
        #expect(next === waiter)
        #expect(pool.openConnections == 1)
    }

    @Test func idleConnectionsAreReusedNewestFirstUntilTheyExpire() {
        var pool = HTTP1Pool(limit: 2)
        var expired: [HTTP1Connection] = []
        let start = NIODeadline.now()
        #expect(acquire(&pool, call(), at: start, expired: &expired).isConnect)
        #expect(acquire(&pool, call(), at: start, expired: &expired).isConnect)
        let older = admitted(&pool), newer = admitted(&pool)
        #expect(pool.release(older, now: start).isKeptIdle)
        #expect(pool.release(newer, now: start + .seconds(30)).isKeptIdle)
        // Within the idle timeout of both: the most recently used one.
        #expect(acquire(&pool, call(), at: start + .seconds(40), expired: &expired).connection === newer)
        #expect(pool.release(newer, now: start + .seconds(40)).isKeptIdle)
        // At 80 s `older` (idle since 0) is past the 60 s timeout: it is handed out to close, and keeps its slot until
        // closed, so with both slots taken the call waits.
        let waiter = call()
        #expect(acquire(&pool, call(), at: start + .seconds(80), expired: &expired).connection === newer)
        #expect(expired.count == 0)
        #expect(acquire(&pool, waiter, at: start + .seconds(80), expired: &expired).isQueued)
        #expect(expired.count == 1 && expired.first === older)
        #expect(pool.openConnections == 2)
        // Closing the expired connection gives its slot to the waiter.
        #expect(pool.closed(older) === waiter)
        #expect(pool.openConnections == 2 && pool.waitingCalls == 0)
    }

    @Test func aCallThatWaitedItsTurnGoesFirstAndAnAbortedWaiterIsSkipped() {
        var pool = HTTP1Pool(limit: 1)
        var expired: [HTTP1Connection] = []
        #expect(acquire(&pool, call(), expired: &expired).isConnect)
        let connection = admitted(&pool)
        let early = call(), late = call(), moved = call()
        #expect(acquire(&pool, early, expired: &expired).isQueued)
        #expect(acquire(&pool, late, expired: &expired).isQueued)
        // `moved` found its connection closed before its request went out: it goes to the head of the queue.
        #expect(acquire(&pool, moved, fresh: true, expired: &expired).isQueued)
        #expect(pool.release(connection, now: .now()).handedTo === moved)
        // `early` was cancelled after it queued and before its abort removed it: the next live waiter is served.
        early.abort(.cancelled)
        #expect(early.isFinished)
        #expect(pool.release(connection, now: .now()).handedTo === late)
        // A waiter that gave up leaves the queue.
        let gaveUp = call()
        #expect(acquire(&pool, gaveUp, expired: &expired).isQueued)
        pool.forget(gaveUp)
        #expect(pool.waitingCalls == 0)
        #expect(pool.release(connection, now: .now()).isKeptIdle)
        // A call aborted before it could queue is not queued.
        let aborted = call()
        aborted.abort(.timedOut)
        #expect(acquire(&pool, aborted, fresh: true, expired: &expired).isEnded)
    }

    @Test func endpointsHaveCapsOfTheirOwn() {
        var pool = HTTP1Pool(limit: 1)
        var expired: [HTTP1Connection] = []
        #expect(acquire(&pool, call(), expired: &expired).isConnect)
        #expect(acquire(&pool, call(Self.other), expired: &expired).isConnect)
        #expect(acquire(&pool, call(), expired: &expired).isQueued)
        #expect(pool.openConnections == 2 && pool.waitingCalls == 1)
    }

    @Test func aShutPoolHandsOutNothingAndGivesBackItsIdleAndWaiting() {
        var pool = HTTP1Pool(limit: 1)
        var expired: [HTTP1Connection] = []
        #expect(acquire(&pool, call(), expired: &expired).isConnect)
        let connection = admitted(&pool)
        #expect(pool.release(connection, now: .now()).isKeptIdle)
        #expect(acquire(&pool, call(Self.other), expired: &expired).isConnect)
        let waiter = call(Self.other)
        #expect(acquire(&pool, waiter, expired: &expired).isQueued)

        let (idle, waiting) = pool.shutDown()
        #expect(idle.count == 1 && idle.first === connection)
        #expect(waiting.count == 1 && waiting.first === waiter)
        #expect(pool.isShutDown && pool.idleConnections == 0 && pool.waitingCalls == 0)
        #expect(acquire(&pool, call(), expired: &expired).isShutDown)
        #expect(pool.release(connection, now: .now()).isClose)
        var next: HTTP1Call?
        #expect(!pool.admit(self.connection(Self.other), active: true, next: &next))
        #expect(next == nil)
    }
}

extension HTTP1Pool.Acquired {
    var isConnect: Bool { if case .connect = self { true } else { false } }
    var isQueued: Bool { if case .queued = self { true } else { false } }
    var isEnded: Bool { if case .ended = self { true } else { false } }
    var isShutDown: Bool { if case .shutDown = self { true } else { false } }
    var connection: HTTP1Connection? { if case .connection(let connection) = self { connection } else { nil } }
}

extension HTTP1Pool.Released {
    var isKeptIdle: Bool { if case .keptIdle = self { true } else { false } }
    var isClose: Bool { if case .close = self { true } else { false } }
    var handedTo: HTTP1Call? { if case .handTo(let call) = self { call } else { nil } }
}
