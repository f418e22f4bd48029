import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

/// `flexcharge-outbox status`: queue health at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Queue health: events per lane and state, oldest pending age, retries, dead letters, leases per worker, circuit breakers, pauses.",
        discussion: """
            Exits 0 when healthy and 3 when an alert threshold is crossed, so monitoring scripts can \
            run it as a check. A circuit breaker that is open or half_open (FlexCharge failing for a \
            merchant and environment: its events wait without spending attempts) is an alert. Active \
            pauses are listed with who paused, when and why (`flexcharge-outbox pauses`); a pause is \
            not an alert by itself, but its events age like any pending event.

            Examples:
              flexcharge-outbox status
              flexcharge-outbox status --json
              flexcharge-outbox status --alert-oldest-seconds 120 --alert-dead 0 || page-oncall
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Alert when a pending event is older than this (seconds).") var alertOldestSeconds = 300.0
    @Option(help: "Alert when more than this many events are dead.") var alertDead = 0

    func run() async throws {
        let report = try await database.withSession { session in
            try await QueueStatus.read(session, thresholds: QueueStatus.Thresholds(oldestPendingSeconds: alertOldestSeconds, dead: alertDead))
        }
        if json {
            print(try jsonText(report))
        } else {
            print(QueueStatus.states.map { "\($0) \(report.totals[$0] ?? 0)" }.joined(separator: "  "))
            print("")
            var table = TextTable(headers: ["lane", "state", "events", "oldest_s", "retrying", "lookup"])
            table.rows = report.lanes.map {
                [$0.lane, $0.state, "\($0.events)", $0.oldestAgeSeconds.map { String(format: "%.1f", $0) } ?? "-", "\($0.retrying)", "\($0.awaitingLookup)"]
            }
            print(report.lanes.isEmpty ? "queue empty" : table.render())
            if !report.leases.isEmpty {
                print("")
                var leases = TextTable(headers: ["worker", "leases", "expired"])
                leases.rows = report.leases.map { [$0.worker, "\($0.leases)", "\($0.expired)"] }
                print(leases.render())
            }
            print("")
            print("circuit breakers: " + QueueStatus.breakerStates.map { "\($0) \(report.breakerCounts[$0] ?? 0)" }.joined(separator: "  "))
            if !report.breakers.isEmpty {
                var breakers = TextTable(headers: ["merchant", "environment", "state", "failures", "trips", "open_since", "next_probe", "pending"])
                breakers.rows = report.breakers.map {
                    [$0.merchantId, $0.environment, $0.state, "\($0.failures)", "\($0.trips)", Self.time($0.openedAt), Self.time($0.retryAt), "\($0.pendingEvents)"]
                }
                print(breakers.render())
            }
            print("")
            print(report.pauses.isEmpty ? "paused: nothing" : "paused:\n" + PausesCommand.table(report.pauses, history: false))
            print("")
            print(report.alerts.isEmpty ? Terminal.green("healthy") : report.alerts.map { Terminal.red("ALERT: \($0)") }.joined(separator: "\n"))
        }
        if !report.alerts.isEmpty { throw ExitCode(3) }
    }

    private static func time(_ date: Date?) -> String {
        date.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "-"
    }
}
