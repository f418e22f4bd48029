/// How long finished history is kept (migrations/0018_retention.sql says exactly what each
/// setting deletes; the database enforces floors of its own whatever is set here).
public struct RetentionPolicy: Sendable, Equatable {
    /// Orders whose events all succeeded or were skipped, after their last change.
    var completed: Duration
    /// Orders with a failed or dead event: kept longer, for investigation.
    var failed: Duration
    /// Orders that hold money (an approved evaluate, a succeeded capture or refund): a refund,
    /// cancellation or chargeback may come months later, and a refund event needs the evaluate.
    var rescued: Duration
    /// The attempt ledger: calls older than this whose event is no longer in the outbox.
    var attempts: Duration
    /// Merchant settings changes (at least a year: PCI DSS asks for one).
    var audit: Duration
    /// Nonces of verified webhooks (only replays within the skew window matter).
    var webhookNonces: Duration
    /// Rows looked at per statement: each batch is its own short transaction.
    var batchSize: Int

    public static let day: Duration = .seconds(86_400)

    public init(
        completed: Duration = day * 30, failed: Duration = day * 90, rescued: Duration = day * 400,
        attempts: Duration = day * 400, audit: Duration = day * 400, webhookNonces: Duration = day,
        batchSize: Int = 1000
    ) {
        self.completed = completed
        self.failed = failed
        self.rescued = rescued
        self.attempts = attempts
        self.audit = audit
        self.webhookNonces = webhookNonces
        self.batchSize = batchSize
    }
}
