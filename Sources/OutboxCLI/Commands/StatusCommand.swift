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

    struct Lane: Codable {
        let lane: String, state: String, events: Int, oldestAgeSeconds: Double?, retrying: Int, awaitingLookup: Int
    }
    struct Lease: Codable { let worker: String, leases: Int, expired: Int }
    /// A circuit breaker that is not closed (or is counting failures), from `flexcharge.breakers`.
    struct Breaker: Codable {
        let merchantId: String, environment: String, state: String, failures: Int, trips: Int
        let openedAt: Date?, retryAt: Date?, pendingEvents: Int, lastError: String?
    }
    struct Report: Codable {
        let lanes: [Lane], leases: [Lease], breakers: [Breaker], breakerCounts: [String: Int], pauses: [Pause], totals: [String: Int], alerts: [String]
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
            let breakerRows = try await session.query(
                """
                SELECT merchant_id, environment, state, failures, trips, opened_at, retry_at, pending_events, last_error
                  FROM flexcharge.breakers ORDER BY merchant_id, environment
                """).rows
            var breakerCounts: [String: Int] = ["closed": 0, "open": 0, "half_open": 0]
            var breakers: [Breaker] = []
            for row in breakerRows {
                let state: String = try row.decode("state")
                breakerCounts[state, default: 0] += 1
                let failures: Int = try row.decode("failures")
                guard state != "closed" || failures > 0 else { continue }
                breakers.append(Breaker(
                    merchantId: try row.decode("merchant_id"), environment: try row.decode("environment"), state: state,
                    failures: failures, trips: try row.decode("trips"), openedAt: try row.decode("opened_at"),
                    retryAt: try row.decode("retry_at"), pendingEvents: try row.decode("pending_events"),
                    lastError: try row.decode("last_error")))
            }
            let pauses = try await PauseBoard(session: session, actor: "").active()
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
            for breaker in breakers where breaker.state != "closed" {
                alerts.append("circuit breaker \(breaker.state) for merchant \(breaker.merchantId) (\(breaker.environment)): FlexCharge is failing; \(breaker.pendingEvents) event(s) wait without spending attempts")
            }
            return Report(lanes: lanes, leases: leases, breakers: breakers, breakerCounts: breakerCounts, pauses: pauses, totals: totals, alerts: alerts)
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
            print("circuit breakers: " + ["closed", "open", "half_open"].map { "\($0) \(report.breakerCounts[$0] ?? 0)" }.joined(separator: "  "))
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
