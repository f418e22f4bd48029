import ArgumentParser
import OutboxEngine

/// The retention settings of `worker` and `prune` (what each deletes: migrations/0018_retention.sql,
/// docs/retention.md). Give every worker the same values: whichever holds the lock applies its own.
struct RetentionOptions: ParsableArguments {
    @Option(help: "Days to keep orders whose events all succeeded or were skipped (after their last change).")
    var retainCompletedDays = 30.0

    @Option(help: "Days to keep orders with a failed or dead event.")
    var retainFailedDays = 90.0

    @Option(help: "Days to keep orders that hold money (approved, captured or refunded): refunds and chargebacks come late.")
    var retainRescuedDays = 400.0

    @Option(help: "Days to keep the attempt ledger (a call's row outlives its event by at least this).")
    var retainAttemptsDays = 400.0

    @Option(help: "Days to keep merchant settings changes (the database keeps at least 365).")
    var retainAuditDays = 400.0

    @Option(help: "Hours to keep nonces of verified webhooks.")
    var retainNoncesHours = 24.0

    @Option(help: "Rows per pruning statement (each its own short transaction; 1 to 5000).")
    var pruneBatchSize = 1000

    func validate() throws {
        for (name, value) in [("--retain-completed-days", retainCompletedDays), ("--retain-failed-days", retainFailedDays),
                              ("--retain-rescued-days", retainRescuedDays), ("--retain-attempts-days", retainAttemptsDays),
                              ("--retain-audit-days", retainAuditDays)] where !(value >= 1) {
            throw ValidationError("\(name) must be at least 1 (the database keeps a day in any case)")
        }
        guard retainNoncesHours >= 1 else { throw ValidationError("--retain-nonces-hours must be at least 1") }
        guard (1...5000).contains(pruneBatchSize) else { throw ValidationError("--prune-batch-size must be 1 to 5000") }
    }

    var policy: RetentionPolicy {
        RetentionPolicy(
            completed: .seconds(retainCompletedDays * 86_400), failed: .seconds(retainFailedDays * 86_400),
            rescued: .seconds(retainRescuedDays * 86_400), attempts: .seconds(retainAttemptsDays * 86_400),
            audit: .seconds(retainAuditDays * 86_400), webhookNonces: .seconds(retainNoncesHours * 3_600),
            batchSize: pruneBatchSize)
    }
}
