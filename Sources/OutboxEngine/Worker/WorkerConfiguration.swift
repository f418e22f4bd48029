import FlexChargeAPI
import Foundation

/// How a worker process behaves. Every field has a default that suits production.
public struct WorkerConfiguration: Sendable {
    /// Identifies this worker in leases and the attempt ledger (`host:pid:random`).
    public var workerID: String
    /// HTTP calls in flight at most.
    public var concurrency: Int
    /// Events claimed per claim call at most.
    public var batchSize: Int
    /// Events claimed ahead of the free slots, queued in the worker (leased, and given back on
    /// SIGTERM), so a slot that finishes starts its next call without waiting for a claim.
    /// Default: three quarters of `concurrency`.
    public var prefetch: Int
    /// The worker claims again only once this many events fit under `concurrency + prefetch` (a
    /// claim costs the database about as much as tens of events); a CIT or MIT evaluate's NOTIFY
    /// and the poll timer claim whatever fits at once. Default: half of `concurrency`, at most
    /// `batchSize`.
    public var claimThreshold: Int
    /// Slots only CIT evaluates may use, so a backlog of other work never fills every slot
    /// while a shopper waits.
    public var reservedForCIT: Int
    /// How long a claim is leased. Renewed while a call is still running.
    public var lease: Duration
    /// How often the queue is polled when no NOTIFY arrives (retries that come due, lost NOTIFYs).
    public var pollInterval: Duration
    /// Retry timing, the attempt limit and FlexCharge's idempotency window (the operator's `retry`
    /// asks the same ``RetryPolicy``).
    public var retryPolicy: RetryPolicy
    /// On SIGTERM: how long in-flight calls may take to finish before they are cancelled.
    public var drainGracePeriod: Duration
    /// Where `sandbox` and `production` events go.
    public var environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment]
    /// Connect and request timeouts of FlexCharge calls.
    public var client: FlexChargeClientConfiguration
    /// When evaluates awaiting their outcome are looked up (the fallback for lost webhooks).
    public var outcomePolling = OutcomePolling()
    /// After a refund's call may have reached FlexCharge (it has no idempotency key), the lookup that
    /// decides whether to send it again waits at least this long, so it does not overtake a refund
    /// FlexCharge is still processing. `nil`: the request timeout.
    public var lookupSettleTime: Duration?
    /// How long the outcome of an event nobody waits for (a transmit, a follow-up) may wait for
    /// company before it is written, unless a claim's worth (`batchSize`) gathers first or an outcome
    /// someone waits for (an evaluate's) arrives and takes it along (see `CompletionWriter`). Each write
    /// costs PostgreSQL about as much as four more outcomes; at 64 calls of 50 ms (1 280 outcomes/s)
    /// the default gathers about a full batch, and it stays far below the lease. It delays the next event of the same order by at most this much.
    public var outcomeBatchWindow: Duration = .milliseconds(50)
    /// The circuit breakers shared by all workers (see ``BreakerPolicy``; `FLEXCHARGE_BREAKER_*`).
    public var breaker = BreakerPolicy(environment: ProcessInfo.processInfo.environment)

    /// The wait before a refund's lookup (see ``lookupSettleTime``).
    var refundSettleTime: Duration { lookupSettleTime ?? client.requestTimeout }

    public init(
        workerID: String = WorkerConfiguration.defaultWorkerID(),
        concurrency: Int = 64,
        batchSize: Int = 64,
        prefetch: Int? = nil,
        reservedForCIT: Int = 4,
        lease: Duration = .seconds(60),
        pollInterval: Duration = .seconds(1),
        retryPolicy: RetryPolicy = RetryPolicy(),
        drainGracePeriod: Duration = .seconds(20),
        environments: [FlexChargeEnvironment.Name: FlexChargeEnvironment] = [.sandbox: .sandbox, .production: .production],
        client: FlexChargeClientConfiguration = .init()
    ) {
        self.workerID = workerID
        self.concurrency = concurrency
        self.batchSize = batchSize
        self.prefetch = max(0, prefetch ?? concurrency * 3 / 4)
        self.claimThreshold = max(1, min(batchSize, concurrency / 2))
        self.reservedForCIT = min(reservedForCIT, max(concurrency - 1, 0))
        self.lease = lease
        self.pollInterval = pollInterval
        self.retryPolicy = retryPolicy
        self.drainGracePeriod = drainGracePeriod
        self.environments = environments
        self.client = client
    }

    /// `hostname:pid:xxxxxx`.
    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(6).lowercased())"
    }
}
