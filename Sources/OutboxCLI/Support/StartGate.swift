import ServiceLifecycle

/// A one-way signal between two services of one group: the worker's claim loop waits until its health
/// port listens, so a port that cannot be bound ends the process before it has leased any event.
///
/// Without it both started at once, and a worker whose bind failed late (8.6 s on a loaded machine)
/// had claimed events by then and was cancelled with them in hand.
final class StartGate: Sendable {
    private let opened: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (opened, continuation) = AsyncStream.makeStream() }

    /// Lets the waiting service start (called once the port listens; later calls do nothing).
    func open() {
        continuation.yield()
        continuation.finish()
    }

    /// True once opened; false when the task is cancelled or the group shuts down gracefully first.
    /// One waiter only (the stream has one consumer).
    func wait() async -> Bool {
        await cancelWhenGracefulShutdown {
            var iterator = self.opened.makeAsyncIterator()
            return await iterator.next() != nil
        }
    }
}

/// Runs `wrapped` once `gate` opens, and returns without running it when the group ends first.
struct GatedService<Wrapped: Service>: Service {
    let gate: StartGate
    let wrapped: Wrapped

    func run() async throws {
        guard await gate.wait() else { return }
        try await wrapped.run()
    }
}
