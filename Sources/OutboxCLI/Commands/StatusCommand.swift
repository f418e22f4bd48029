import ArgumentParser
import Foundation
import LibPQ

/// `flexcharge-outbox status`: queue health at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Queue health: events per lane and state, oldest pending age, retries, dead letters, leases per worker.",
        discussion: """
            Exits 0 when healthy and 3 when an alert threshold is crossed, so monitoring scripts can \
            run it as a check.

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

    struct Lane: Codable {
        let lane: String, state: String, events: Int, oldestAgeSeconds: Double?, retrying: Int, awaitingLookup: Int
    }
    struct Lease: Codable { let worker: String, leases: Int, expired: Int }
    struct Report: Codable {
        let lanes: [Lane], leases: [Lease], totals: [String: Int], alerts: [String]
    }

    func run() async throws {
        let report = try await database.withSession { session -> Report in
            let lanes = try await session.query(
                "SELECT lane_name, state, events, oldest_age_seconds, retrying, awaiting_lookup FROM flexcharge.queue_health ORDER BY lane, state"
            ).rows.map {
                Lane(lane: try $0.decode("lane_name"), state: try $0.decode("state"), events: try $0.decode("events"),
                     oldestAgeSeconds: try $0.decode("oldest_age_seconds"), retrying: try $0.decode("retrying"),
                     awaitingLookup: try $0.decode("awaiting_lookup"))
            }
            let leases = try await session.query("SELECT worker, leases, expired FROM flexcharge.worker_leases ORDER BY worker").rows.map {
                Lease(worker: try $0.decode("worker"), leases: try $0.decode("leases"), expired: try $0.decode("expired"))
            }
            var totals: [String: Int] = [:]
            for row in try await session.query("SELECT state, count(*)::bigint AS n FROM flexcharge.outbox GROUP BY state").rows {
                totals[try row.decode("state")] = try row.decode("n")
            }
            var alerts: [String] = []
            if let oldest = lanes.filter({ $0.state == "pending" }).compactMap(\.oldestAgeSeconds).max(), oldest > alertOldestSeconds {
                alerts.append("oldest pending event is \(Int(oldest)) s old (threshold \(Int(alertOldestSeconds)) s)")
            }
            if let dead = totals["dead"], dead > alertDead { alerts.append("\(dead) dead event(s) (threshold \(alertDead))") }
            let expired = leases.map(\.expired).reduce(0, +)
            if expired > 0 { alerts.append("\(expired) expired lease(s): a worker stopped answering") }
            return Report(lanes: lanes, leases: leases, totals: totals, alerts: alerts)
        }
        if json {
            print(try jsonText(report))
        } else {
            let states = ["pending", "running", "awaiting_outcome", "succeeded", "failed", "skipped", "dead"]
            print(states.map { "\($0) \(report.totals[$0] ?? 0)" }.joined(separator: "  "))
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
            print(report.alerts.isEmpty ? Terminal.green("healthy") : report.alerts.map { Terminal.red("ALERT: \($0)") }.joined(separator: "\n"))
        }
        if !report.alerts.isEmpty { throw ExitCode(3) }
    }
}
