import AsyncHTTPClient
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
/// It uses four connections: claims, outcome writes, LISTEN, and maintenance (expired-lease
/// rescue, lease renewal, queue metrics).
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

    public func run() async throws {
        let sessions = (
            claim: PGSession(configuration: database, name: "claim"),
            writer: PGSession(configuration: database, name: "writer"),
            listener: PGSession(configuration: database, name: "listen"),
            maintenance: PGSession(configuration: database, name: "maintenance"),
            outcomes: PGSession(configuration: database, name: "outcomes")
        )
        try await sessions.claim.connect()
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.timeout = .init(
            connect: .init(configuration.client.connectTimeout), read: .init(configuration.client.requestTimeout))
        httpConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(configuration.concurrency, 8))
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        var clients: [String: FlexChargeClient] = [:]
        for (name, environment) in configuration.environments {
            clients[name.rawValue] = FlexChargeClient(
                environment: environment, httpClient: httpClient, configuration: configuration.client, logger: logger)
        }
        let delivery = EventDelivery(
            clients: clients, credentials: CredentialCache(sealer: sealer), configuration: configuration, logger: logger)
        let writer = CompletionWriter(session: sessions.writer, worker: configuration.workerID, logger: logger)
        let poller = OutcomePoller(
            session: sessions.outcomes, clients: clients, sealer: sealer, polling: configuration.outcomePolling,
            worker: configuration.workerID, logger: logger)
        let inFlight = InFlightEvents()
        let wake = WakeSignal()
        let draining = DrainFlag()

        logger.info("worker started", metadata: [
            "concurrency": "\(configuration.concurrency)", "lease_seconds": "\(configuration.lease.seconds)",
        ])
        health.setReady(true)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { background in
                background.addTask { await writer.run() }
                background.addTask { await self.listen(on: sessions.listener, wake: wake) }
                background.addTask { await self.maintain(on: sessions.maintenance, inFlight: inFlight) }
                background.addTask { await poller.run() }
                await self.claimLoop(
                    session: sessions.claim, delivery: delivery, writer: writer, inFlight: inFlight, wake: wake,
                    draining: draining)
                await writer.finish()
                background.cancelAll()
            }
        } onGracefulShutdown: {
            self.health.setReady(false)
            draining.set()
            Task { await wake.signal() }
        }
        health.setReady(false)
        try? await httpClient.shutdown()
        for session in [sessions.claim, sessions.writer, sessions.listener, sessions.maintenance, sessions.outcomes] { await session.close() }
        logger.info("worker stopped")
    }

    /// Claims while there are free slots, runs each event's call as a child task, and waits for a
    /// NOTIFY, a freed slot or the poll interval when there is nothing to do.
    private func claimLoop(
        session: PGSession, delivery: EventDelivery, writer: CompletionWriter, inFlight: InFlightEvents,
        wake: WakeSignal, draining: DrainFlag
    ) async {
        await withDiscardingTaskGroup { calls in
            var failures = 0
            // A claim costs the database about as much as tens of events, so after a freed slot the
            // loop waits until `claimThreshold` slots are free; a CIT NOTIFY or the poll timer claims
            // whatever is free at once.
            var claimAnything = true
            while !draining.isSet {
                let busy = await inFlight.count
                let free = configuration.concurrency - busy
                let minimum = claimAnything ? 1 : configuration.claimThreshold
                var claimed = 0
                if free >= minimum {
                    let busyOthers = await inFlight.nonCITCount
                    let othersFree = max(0, configuration.concurrency - configuration.reservedForCIT - busyOthers)
                    let total = min(free, configuration.batchSize)
                    let others = min(total, othersFree)
                    do {
                        let events = try await store.claim(
                            on: session, worker: configuration.workerID, total: total,
                            laneCaps: [total, others, others, others], lease: configuration.lease)
                        failures = 0
                        health.databaseReachable(true)
                        claimed = events.count
                        WorkerMetrics.claimed(events)
                        await inFlight.add(events)
                        for event in events {
                            calls.addTask {
                                let completion = await delivery.deliver(event)
                                if completion.outcome != .succeeded && completion.outcome != .awaitingOutcome {
                                    self.logger.info("event not done", metadata: [
                                        "event_id": "\(event.id)", "merchant_id": "\(event.merchantID)",
                                        "kind": "\(event.kind.rawValue)", "attempt": "\(event.attempt)",
                                        "outcome": "\(completion.outcome.state)", "failure_class": "\(completion.failureClass ?? "")",
                                        "error": "\(completion.error ?? "")",
                                    ])
                                }
                                await writer.submit(completion)
                                await inFlight.remove(event.id)
                                await wake.signal()
                            }
                        }
                    } catch {
                        failures += 1
                        health.databaseReachable(false)
                        logger.error("claim failed", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5000)))
                        continue
                    }
                }
                // A full batch means more may be waiting: claim again at once.
                if claimed == 0 || claimed < min(free, configuration.batchSize) || free < minimum {
                    claimAnything = await wake.wait(timeout: configuration.pollInterval) != .signal
                } else {
                    claimAnything = false
                }
            }
            // Draining: in-flight calls get the grace period, then are cancelled (recorded as ambiguous).
            let deadline = ContinuousClock.now + configuration.drainGracePeriod
            while await inFlight.count > 0 && ContinuousClock.now < deadline {
                _ = await wake.wait(timeout: .milliseconds(100))
            }
            if await inFlight.count > 0 {
                let remaining = await inFlight.count
                logger.warning("grace period over; cancelling calls still in flight", metadata: ["in_flight": "\(remaining)"])
                calls.cancelAll()
            }
        }
    }

    /// LISTENs for the gateway's inserts and wakes the claim loop; reconnects and listens again
    /// after a connection failure.
    private func listen(on session: PGSession, wake: WakeSignal) async {
        var listening = false
        while !Task.isCancelled {
            do {
                if !listening {
                    try await session.listen("flexcharge_outbox")
                    listening = true
                    await wake.signal(urgent: true)  // anything inserted while we were not listening
                }
                // The payload is the most urgent lane inserted; evaluates (lanes 0 and 1) are urgent.
                let notifications = try await session.waitForNotifications(timeoutMilliseconds: 500)
                if !notifications.isEmpty {
                    await wake.signal(urgent: notifications.contains { $0.payload == "0" || $0.payload == "1" })
                }
            } catch {
                listening = false
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Rescues expired leases (rows of dead workers), renews leases of long calls, and publishes
    /// queue depth per lane.
    private func maintain(on session: PGSession, inFlight: InFlightEvents) async {
        let period = min(configuration.lease / 3, .seconds(2))
        var lastQueueMetrics = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            do {
                // Renew our own leases first, so a late iteration never rescues this worker's live calls.
                let due = await inFlight.older(than: configuration.lease / 3)
                let renewed = try await store.renewLeases(due, worker: configuration.workerID, lease: configuration.lease, on: session)
                await inFlight.renewed(renewed)
                let rescued = try await store.rescueExpiredLeases(maxAttempts: configuration.backoff.maxAttempts, on: session)
                if rescued > 0 { logger.warning("rescued events whose lease expired", metadata: ["count": "\(rescued)"]) }
                if ContinuousClock.now - lastQueueMetrics >= .seconds(10) {
                    lastQueueMetrics = ContinuousClock.now
                    for lane in try await store.laneDepths(on: session) {
                        WorkerMetrics.queue(lane: lane.lane, depth: lane.depth, oldestAgeSeconds: lane.oldestAgeSeconds)
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
