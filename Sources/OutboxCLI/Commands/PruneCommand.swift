import ArgumentParser
import Logging
import OutboxEngine

/// `flexcharge-outbox prune`: one retention pass, for a CronJob or by hand.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished history older than its retention (one pass), in small batches.",
        discussion: """
            Deletes whole orders whose events are all final (succeeded, skipped, failed, dead) once \
            their last change is older than their retention, with their outcome events; then ledger \
            rows whose event is gone, old merchant audit rows and webhook nonces. Never a pending, \
            running or awaiting_outcome event, nor any event of an order that still has one. \
            Workers run the same pass every --prune-interval-minutes; one pruner at a time holds an \
            advisory lock, and a second one skips (exit 0). Run it as a worker login \
            (flexcharge_worker): the rules are in migrations/0018_retention.sql and docs/retention.md.

            Examples:
              flexcharge-outbox prune
              flexcharge-outbox prune --retain-completed-days 14 --retain-failed-days 60
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var retention: RetentionOptions

    func run() async throws {
        let pruner = Pruner(policy: retention.policy)
        let report = try await database.withSession { session in try await pruner.pass(on: session) }
        if let report {
            print("pruned \(report)")
        } else {
            print("another pruner holds the lock (a worker is pruning); nothing done")
        }
    }
}
