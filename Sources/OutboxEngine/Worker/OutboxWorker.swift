import FlexChargeAPI
import Foundation
import LibPQ
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The worker: claims events, calls FlexCharge, records outcomes. A swift-service-lifecycle
/// `Service`: on SIGTERM/SIGINT it stops claiming, lets in-flight calls finish within the grace
/// period (then cancels them, which records them as ambiguous), writes every outcome, and gives
/// back events it claimed but never started.
///
/// It uses seven connections: claims, outcome writes, LISTEN, maintenance (expired-lease rescue,
/// lease renewal, queue metrics), the lookups of evaluates awaiting their outcome, the
/// readiness probe and the circuit breakers. Their statements are bounded by ``statementTimeout`` (unless the database URL
/// sets `statement_timeout` itself); the probe makes `/readyz` unready within seconds when the
/// database stops answering (see ``WorkerHealth``).
public final class OutboxWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let database: PGConfiguration
    private let sealer: CredentialSealer
    private let logger: Logger
    private let health: WorkerHealth
    private let store = OutboxStore()

    public init(
        configuration: WorkerConfiguration, database: PGConfiguration, sealer: CredentialSealer,
        health: WorkerHealth = WorkerHealth(), logger: Logger = Logger(label: "flexcharge.worker")
    ) {
        self.configuration = configuration
        self.database = database
        self.sealer = sealer
        self.health = health
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        self.logger = logger
    }

    /// The server-side statement timeout of the worker's sessions: its statements take
    /// milliseconds, so one that takes seconds means the database is in trouble. A statement with
    /// no answer at all is given up ``PGConfiguration/cancelGrace`` later (7 s in all).
    public static let statementTimeout: Duration = .seconds(5)

    public func run() async throws {
        var database = database
        database.statementTimeout = Self.statementTimeout
        let sessions = (
            claim: PGSession(configuration: database, name: "claim", logger: logger),
            writer: PGSession(configuration: database, name: "writer", logger: logger),
            // The listener and the probe log their own connection changes.
            listener: PGSession(configuration: database, name: "listen"),
            maintenance: PGSession(configuration: database, name: "maintenance", logger: logger),
            outcomes: PGSession(configuration: database, name: "outcomes", logger: logger),
            probe: PGSession(configuration: database, name: "probe")
        )
        try await sessions.claim.connect()
        let transport = HTTP1Transport(configuration: .init(
            connectTimeout: configuration.client.connectTimeout,
            maximumConnectionsPerEndpoint: max(configuration.concurrency, 8)))
        var clients: [String: FlexChargeClient] = [:]
        for (name, environment) in configuration.environments {
            clients[name.rawValue] = FlexChargeClient(
                environment: environment, transport: transport, configuration: configuration.client, logger: logger)
        }
        let credentials = CredentialCache(sealer: sealer)
        let breakers = BreakerBoard(
            policy: configuration.breaker, worker: configuration.workerID, database: database, clients: clients,
            credentials: credentials, logger: logger)
        let delivery = EventDelivery(
            clients: clients, credentials: credentials, configuration: configuration, logger: logger,
            breakers: breakers, rateLimiter: RateLimiter(board: breakers, logger: logger))
        let writer = CompletionWriter(
            session: sessions.writer, worker: configuration.workerID, logger: logger,
            batching: .init(companyWindow: configuration.outcomeBatchWindow, fullBatch: configuration.batchSize))
        let poller = OutcomePoller(
            session: sessions.outcomes, clients: clients, credentials: credentials, polling: configuration.outcomePolling,
            worker: configuration.workerID, logger: logger)
        let held = HeldEvents()
        let wake = WakeSignal()
        let draining = DrainFlag()

        logger.info("worker started", metadata: [
            "concurrency": "\(configuration.concurrency)", "lease_seconds": "\(configuration.lease.seconds)",
        ])
        health.setReady(true)
        // SIGTERM (graceful shutdown) drains within the grace period; a cancelled task (the service
        // group cancelled, e.g. because the health port could not be bound) drains at once: calls are
        // cancelled with the task, and what cannot be written is left to the leases.
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { background in
                background.addTask { await writer.run() }
                background.addTask { await self.listen(on: sessions.listener, wake: wake) }
                background.addTask { await self.probeDatabase(on: sessions.probe) }
                background.addTask { await self.maintain(on: sessions.maintenance, held: held, writer: writer) }
                background.addTask { await poller.run() }
                background.addTask { await breakers.run() }
                let gaveBack = await self.claimLoop(
                    session: sessions.claim, delivery: delivery, writer: writer, held: held, wake: wake,
                    draining: draining)
                // Outcomes get a few seconds to be written; past that (the database is away) the
                // writer's statement is abandoned with the rest of the background work. Giving back
                // the unstarted events runs meanwhile (it began when the drain did).
                await writer.finish(within: .seconds(3))
                await gaveBack.value
                background.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            self.health.setReady(false)
            draining.set()
            wake.signal()
        }
        health.setReady(false)
        await transport.shutdown()
        // The breakers' connection (shared with the rate limiter) too: the board closes it only when breakers are on.
        for session in [sessions.claim, sessions.writer, sessions.listener, sessions.maintenance, sessions.outcomes, sessions.probe,
                        breakers.session] {
            await session.close()
        }
        logger.info("worker stopped")
    }

    /// Claims while the worker holds fewer than `concurrency + prefetch` events, feeds them to
    /// `concurrency` call slots, and waits for a NOTIFY, a finished call or the poll interval when
    /// there is nothing to claim. On shutdown it gives back the events no slot started.
    /// Returns the task giving back the unstarted events (bounded), which runs on while the calls
    /// finish and the outcomes are written.
    private func claimLoop(
        session: PGSession, delivery: EventDelivery, writer: CompletionWriter, held: HeldEvents,
        wake: WakeSignal, draining: DrainFlag
    ) async -> Task<Void, Never> {
        let capacity = configuration.concurrency + configuration.prefetch
        return await withDiscardingTaskGroup(returning: Task<Void, Never>.self) { calls in
            for slot in 0..<configuration.concurrency {
                let citOnly = slot < configuration.reservedForCIT
                calls.addTask {
                    await self.callSlot(citOnly: citOnly, capacity: capacity, delivery: delivery, writer: writer, held: held, wake: wake)
                }
            }
            var failures = 0
            // A claim costs the database about as much as tens of events, so after a finished call
            // the loop waits until `claimThreshold` events fit; a CIT NOTIFY or the poll timer
            // claims whatever fits at once.
            var claimAnything = true
            while !draining.isSet {
                let room = capacity - held.count
                let minimum = claimAnything ? 1 : configuration.claimThreshold
                let total = min(room, configuration.batchSize)
                var claimed = 0
                if room >= minimum {
                    // Non-CIT events never take the last `reservedForCIT` places, so a CIT evaluate
                    // can always be claimed at once.
                    let othersRoom = max(0, capacity - configuration.reservedForCIT - held.nonCITCount)
                    let others = min(total, othersRoom)
                    do {
                        let events = try await store.claim(
                            on: session, worker: configuration.workerID, total: total,
                            laneCaps: Lane.claimCaps(total: total, others: others), lease: configuration.lease)
                        failures = 0
                        claimed = events.count
                        WorkerMetrics.claimed(events)
                        held.add(events)
                    } catch {
                        failures += 1
                        logger.error("claim failed", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: Backoff.databaseRetryPause(afterFailures: failures, cap: .seconds(5)))
                        continue
                    }
                }
                // A full batch means more may be waiting: claim again at once.
                if claimed == 0 || claimed < total || room < minimum {
                    claimAnything = await wake.wait(timeout: configuration.pollInterval) != .signal
                } else {
                    claimAnything = false
                }
            }
            // Giving back runs while the calls in flight finish (with the database away it must not
            // add its own wait to the grace period).
            let deadline = ContinuousClock.now + configuration.drainGracePeriod
            let unstarted = held.close()
            let gaveBack = Task { await self.giveBack(unstarted, on: session) }
            while held.count > 0 && ContinuousClock.now < deadline {
                // A cancelled task drains at once: its calls are cancelled with it and the group awaits them.
                if await wake.wait(timeout: .milliseconds(100)) == .cancelled { break }
            }
            if held.count > 0 && !Task.isCancelled {
                let remaining = held.count
                logger.warning("grace period over; cancelling calls still in flight", metadata: ["in_flight": "\(remaining)"])
                calls.cancelAll()
            }
            return gaveBack
        }
    }

    /// One call slot: takes the next held event, calls FlexCharge, hands the outcome to the
    /// writer, and wakes the claim loop once a claim's worth of room is free.
    private func callSlot(
        citOnly: Bool, capacity: Int, delivery: EventDelivery, writer: CompletionWriter, held: HeldEvents, wake: WakeSignal
    ) async {
        while let event = await held.next(citOnly: citOnly) {
            // Its circuit breaker holds it (FlexCharge failing): given back, no call, no attempt counted.
            guard await delivery.admit(event) else {
                if capacity - held.finish(event.id) >= configuration.claimThreshold { wake.signal() }
                continue
            }
            let completion = await delivery.deliver(event)
            if completion.outcome != .succeeded && completion.outcome != .awaitingOutcome {
                logger.info("event not done", metadata: [
                    "event_id": "\(event.id)", "merchant_id": "\(event.merchantID)",
                    "kind": "\(event.kind.rawValue)", "attempt": "\(event.attempt)",
                    "outcome": "\(completion.outcome.state)", "failure_class": "\(completion.failureClass ?? "")",
                    "error": "\(completion.error ?? "")",
                ])
            }
            writer.submit(completion, lane: event.claimLane)
            if capacity - held.finish(event.id) >= configuration.claimThreshold {
                wake.signal()
            }
        }
    }

    /// Shutdown: events claimed but never started go back to pending, their claim not counted as
    /// an attempt. If the database is unreachable they come back when their lease expires.
    private func giveBack(_ unstarted: [ClaimedEvent], on session: PGSession) async {
        guard !unstarted.isEmpty else { return }
        do {
            // Bounded: with the database away, the grace period must not wait for this statement.
            try await store.release(unstarted.map(\.id), worker: configuration.workerID, on: session, timeout: .seconds(2))
            logger.info("gave back events claimed but not started", metadata: ["count": "\(unstarted.count)"])
        } catch {
            logger.warning("could not give back unstarted events; they return when their lease expires",
                           metadata: ["count": "\(unstarted.count)", "error": "\(error)"])
        }
    }

    /// LISTENs for the gateway's inserts and wakes the claim loop. The session LISTENs again by
    /// itself on every new connection (server restart, `pg_terminate_backend`, network); this loop
    /// sees the new connection by its generation, says so, and claims at once, since NOTIFYs sent
    /// while it was disconnected are lost. While it cannot connect, the poll interval picks events up.
    private func listen(on session: PGSession, wake: WakeSignal) async {
        let channel = "flexcharge_outbox"
        var generation: UInt64 = 0  // the connection LISTEN was last seen on; 0: not listening yet
        var failing = false
        while !Task.isCancelled {
            do {
                if generation == 0 {
                    try await session.listen(channel)
                    generation = await session.connectionGeneration
                    wake.signal(urgent: true)  // anything inserted while we were not listening
                }
                // The payload is the most urgent lane inserted; the lane says whether it wakes at once.
                let notifications = try await session.waitForNotifications(timeoutMilliseconds: 500)
                if !notifications.isEmpty {
                    wake.signal(urgent: notifications.contains { Lane.wakesAtOnce(notifyPayload: $0.payload) })
                }
                let current = await session.connectionGeneration
                if current != generation {
                    generation = current
                    wake.signal(urgent: true)
                    logger.notice("listener reconnected to PostgreSQL and LISTENs again; claiming now for events inserted meanwhile",
                                  metadata: ["channel": "\(channel)", "generation": "\(current)"])
                }
                failing = false
            } catch {
                if Task.isCancelled { break }
                if !failing {
                    failing = true
                    logger.warning("listener lost its connection to PostgreSQL; new events wait for the poll interval until it reconnects",
                                   metadata: ["error": "\(error)", "poll_interval": "\(configuration.pollInterval)"])
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// `/readyz`'s database half: a ``DatabaseProbe`` every ``WorkerHealth/probeInterval`` on a
    /// connection of its own. Logs once when the database stops answering and once when it answers again.
    private func probeDatabase(on session: PGSession) async {
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await DatabaseProbe.run(on: session) { overdue in self.databaseFailed("\(overdue)") }
                if case .becameReachable(let after) = health.databaseAnswered() {
                    logger.notice("database answering again; ready", metadata: ["unreachable_for": "\(after)"])
                }
            } catch {
                if Task.isCancelled { break }
                databaseFailed("\(error)")
            }
            try? await Task.sleep(until: started + WorkerHealth.probeInterval, clock: .continuous)
        }
    }

    private func databaseFailed(_ reason: String) {
        if case .becameUnreachable(let reason) = health.databaseFailed(reason) {
            logger.warning("database not answering; /readyz reports not ready until it does", metadata: ["error": "\(reason)"])
        }
    }

    /// Rescues expired leases (rows of dead workers), renews the leases of long calls and of
    /// outcomes still waiting to be written, and publishes queue depth per lane.
    private func maintain(on session: PGSession, held: HeldEvents, writer: CompletionWriter) async {
        let period = min(configuration.lease / 3, .seconds(2))
        var lastQueueMetrics = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            do {
                // Renew our own leases first, so a late iteration never rescues this worker's live calls.
                // An outcome waiting for the database keeps its lease, so no other worker sends its event again.
                let due = held.leasesOlder(than: configuration.lease / 3) + writer.unwritten(olderThan: configuration.lease / 3)
                let renewed = try await store.renewLeases(due, worker: configuration.workerID, lease: configuration.lease, on: session)
                held.renewed(renewed)
                let rescued = try await store.rescueExpiredLeases(
                    policy: configuration.retryPolicy, hold: min(configuration.lease / 2, .seconds(5)), on: session)
                if rescued > 0 { logger.warning("rescued events whose lease expired", metadata: ["count": "\(rescued)"]) }
                if ContinuousClock.now - lastQueueMetrics >= .seconds(10) {
                    lastQueueMetrics = ContinuousClock.now
                    for lane in try await store.laneDepths(on: session) {
                        WorkerMetrics.queue(lane)
                    }
                }
            } catch {
                logger.warning("maintenance failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: period)
        }
    }
}

/// Set once, when shutdown begins.
final class DrainFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
