import ArgumentParser
import FlexChargeAPI
import Foundation
import OutboxEngine

/// `flexcharge-outbox reconcile`.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare a merchant's evaluates of one day with FlexCharge's orders and list every difference.",
        discussion: """
            Reads FlexCharge's orders of that UTC day (GET /orders, paged) in every environment the \
            merchant has credentials for, and compares each with our evaluate: known to both, \
            decision (as a lookup of the order would leave it: docs/outcomes.md), amount, cents \
            refunded. Exits 0 when both agree and 3 when they differ.

            Example:
              flexcharge-outbox reconcile --merchant shoes-r-us --day 2026-11-25
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The merchant id.") var merchant: String
    @Option(help: "The UTC day, YYYY-MM-DD.") var day: String
    @OptionGroup var flexCharge: FlexChargeURLOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        guard let date = ReportCommand.day(day) else { throw CLIFailure.badInput("--day must be a date like 2026-11-26") }
        let sealer = try ProcessSetup.credentialSealer()
        let differences = try await database.withSession { session -> [Reconciler.Difference] in
            guard try await MerchantStore(session: session, actor: "").settings(merchant) != nil else {
                throw CLIFailure.badInput("unknown merchant \(merchant)")
            }
            return try await Reconciler(session: session, sealer: sealer, environments: flexCharge.environments)
                .differences(merchantID: merchant, day: date)
        }
        if json {
            print(try jsonText(differences))
        } else if differences.isEmpty {
            print("no differences: our records and FlexCharge agree for \(merchant) on \(day)")
        } else {
            var table = TextTable(headers: ["environment", "order_session_key", "order_id", "difference"])
            table.rows = differences.map { [$0.environment, $0.orderSessionKey, $0.merchantOrderID ?? "-", $0.problem] }
            print(table.render())
        }
        if !differences.isEmpty { throw ExitCode(3) }
    }
}
