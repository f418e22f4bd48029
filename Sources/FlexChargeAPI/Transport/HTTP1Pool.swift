import NIOCore

/// The connection book of an ``HTTP1Transport``: per endpoint (scheme, host and port) how many connections are
/// open, which of them are idle, and the calls waiting for one. Only decisions here, no I/O; the transport holds it
/// under its lock and acts on the answers.
///
/// The cap counts every connection of an endpoint from the moment a call is promised a new one (connecting) until
/// its channel is closed (``closed(_:)``), idle or in use: never more than ``limit`` at once. A call that finds
/// no idle connection and no free slot waits, first come first served, until a connection is released (it gets
/// that connection) or closed (it gets the slot, for a new one). A slot is freed exactly once, by whichever comes
/// first of: the connect failing, the connection refused at admission, the connection's channel closing.
struct HTTP1Pool {
    /// Connections per endpoint, idle and in use, connecting included.
    let limit: Int

    private struct Endpoint {
        var idle: [(connection: HTTP1Connection, since: NIODeadline)] = []
        /// Slots taken: connections admitted and open, plus connects under way.
        var open = 0
        var waiting = CircularBuffer<HTTP1Call>(initialCapacity: 0)
    }

    private var endpoints: [HTTP1Endpoint: Endpoint] = [:]
    /// Connections admitted and not yet closed: each holds one slot of its endpoint.
    private var members: Set<ObjectIdentifier> = []
    private(set) var isShutDown = false

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    enum Acquired {
        /// An idle connection, taken out of the pool: run the call on it.
        case connection(HTTP1Connection)
        /// A slot is reserved for the call: open a new connection.
        case connect
        /// The call waits in the endpoint's queue.
        case queued
        case shutDown
        /// The call ended (aborted) before it could queue: nothing to do.
        case ended
    }

    /// A connection for `call`: the most recently used idle one not older than `idleTimeout` (unless `fresh`), a
    /// slot for a new one, or a place in the queue (`fresh`: at its head, the call has waited its turn already).
    /// Idle connections past the timeout are moved to `expired` (to close; they keep their slot until closed).
    mutating func acquire(_ call: HTTP1Call, fresh: Bool, now: NIODeadline, idleTimeout: TimeAmount,
                          expired: inout [HTTP1Connection]) -> Acquired {
        guard !isShutDown else { return .shutDown }
        let limit = limit
        return modify(call.endpoint) { endpoint -> Acquired in
            if !fresh {
                while let last = endpoint.idle.popLast() {
                    if now - last.since < idleTimeout { return .connection(last.connection) }
                    expired.append(last.connection)
                }
            }
            if endpoint.open < limit, endpoint.waiting.isEmpty || fresh {
                endpoint.open += 1
                return .connect
            }
            // Checked here, under the transport's lock: a call aborted before this point is not queued; one
            // aborted after it is removed by ``forget(_:)``, which its abort runs next.
            guard !call.isFinished else { return .ended }
            if fresh {
                endpoint.waiting.prepend(call)
            } else {
                endpoint.waiting.append(call)
            }
            return .queued
        }
    }

    /// A connect for `endpoint` succeeded: the connection holds its slot from now until ``closed(_:)``. False (the
    /// slot freed, and possibly handed to `next`) when the transport was shut down or the channel closed already.
    mutating func admit(_ connection: HTTP1Connection, active: Bool, next: inout HTTP1Call?) -> Bool {
        guard !isShutDown, active else {
            next = freeSlot(connection.endpoint)
            return false
        }
        members.insert(ObjectIdentifier(connection))
        return true
    }

    /// A connect for `endpoint` failed: its slot is freed, or handed to the returned waiter (connect for it).
    mutating func connectFailed(_ endpoint: HTTP1Endpoint) -> HTTP1Call? {
        freeSlot(endpoint)
    }

    enum Released {
        case keptIdle
        case close
        /// Run this waiting call on the connection.
        case handTo(HTTP1Call)
    }

    /// Takes back a connection whose exchange ended cleanly: to the first waiter, else kept idle; closed when it is
    /// no longer a member (closed meanwhile) or the transport is shut down.
    mutating func release(_ connection: HTTP1Connection, now: NIODeadline) -> Released {
        guard !isShutDown, members.contains(ObjectIdentifier(connection)) else { return .close }
        return modify(connection.endpoint) { endpoint -> Released in
            if let waiter = Self.firstLive(&endpoint.waiting) { return .handTo(waiter) }
            endpoint.idle.append((connection, now))  // in place, no copy
            return .keptIdle
        }
    }

    /// A connection's channel closed: its slot is freed, or handed to the returned waiter (connect for it).
    mutating func closed(_ connection: HTTP1Connection) -> HTTP1Call? {
        guard members.remove(ObjectIdentifier(connection)) != nil else { return nil }
        if endpoints[connection.endpoint]?.idle.isEmpty == false {
            endpoints[connection.endpoint]?.idle.removeAll { $0.connection === connection }
        }
        return freeSlot(connection.endpoint)
    }

    /// A waiter whose caller gave up (cancelled, deadline passed) leaves the queue.
    mutating func forget(_ call: HTTP1Call) {
        guard endpoints[call.endpoint]?.waiting.isEmpty == false else { return }
        modify(call.endpoint) { endpoint in
            if let index = endpoint.waiting.firstIndex(where: { $0 === call }) {
                endpoint.waiting.remove(at: index)
            }
        }
    }

    /// Shuts the pool: no connection is handed out or kept from now on. Answers the idle connections (to close)
    /// and the waiting calls (to fail).
    mutating func shutDown() -> (idle: [HTTP1Connection], waiting: [HTTP1Call]) {
        isShutDown = true
        var idle: [HTTP1Connection] = []
        var waiting: [HTTP1Call] = []
        for key in endpoints.keys {
            modify(key) { endpoint in
                idle += endpoint.idle.map(\.connection)
                waiting += endpoint.waiting
                endpoint.idle = []
                endpoint.waiting.removeAll()
            }
        }
        return (idle, waiting)
    }

    /// Open connections (connects under way included), all endpoints.
    var openConnections: Int { endpoints.values.reduce(0) { $0 + $1.open } }
    /// Idle connections, all endpoints.
    var idleConnections: Int { endpoints.values.reduce(0) { $0 + $1.idle.count } }
    /// Calls waiting for a connection, all endpoints.
    var waitingCalls: Int { endpoints.values.reduce(0) { $0 + $1.waiting.count } }

    /// Frees one slot of `endpoint`, or hands it straight to its first live waiter (the slot stays taken).
    private mutating func freeSlot(_ endpoint: HTTP1Endpoint) -> HTTP1Call? {
        let isShutDown = isShutDown
        return modify(endpoint) { endpoint -> HTTP1Call? in
            if !isShutDown, let waiter = Self.firstLive(&endpoint.waiting) { return waiter }
            endpoint.open -= 1
            return nil
        }
    }

    /// Pops waiters until one whose call has not ended (an ended one was aborted between its abort and its
    /// ``forget(_:)``).
    private static func firstLive(_ waiting: inout CircularBuffer<HTTP1Call>) -> HTTP1Call? {
        while let waiter = waiting.popFirst() {
            if !waiter.isFinished { return waiter }
        }
        return nil
    }

    /// Runs `body` on the state of `key` in place, and drops the entry once it holds nothing.
    private mutating func modify<T>(_ key: HTTP1Endpoint, _ body: (inout Endpoint) -> T) -> T {
        func run(_ endpoint: inout Endpoint) -> (T, Bool) {
            (body(&endpoint), endpoint.open == 0 && endpoint.idle.isEmpty && endpoint.waiting.isEmpty)
        }
        let (result, empty) = run(&endpoints[key, default: Endpoint()])
        if empty { endpoints[key] = nil }
        return result
    }
}
