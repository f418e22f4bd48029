import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

/// `flexcharge-outbox events show|list`.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Look at events: one with its attempts and outcome, or a filtered list.",
        discussion: """
            Examples:
              flexcharge-outbox events show 4711
              flexcharge-outbox events list --state dead --merchant shoes-r-us
              flexcharge-outbox events list --order A-1001
            """,
        subcommands: [Show.self, List.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An event, its attempts and its outcome (the payload is not printed: it is the gateway's data).",
            discussion: "Example: flexcharge-outbox events show 4711 --json")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The event id.") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let eventID = try parseEventID(id)
            try await database.withSession { session in
                let queries = EventQueries(session: session)
                guard let event = try await queries.event(eventID) else { throw CLIFailure.badInput("unknown event \(eventID)") }
                let attempts = try await queries.attempts(eventID)
                let fields = Array(event.values.enumerated())
                if json {
                    var object: [String: String?] = [:]
                    for (index, value) in fields { object[try columnName(event, index)] = value }
                    let rows = attempts.rows.map { row in Dictionary(uniqueKeysWithValues: zip(attempts.columns, row.values)) }
                    print(try jsonText(EventDump(event: object, attempts: rows)))
                    return
                }
                for (index, value) in fields { print("\(try columnName(event, index).padding(toLength: 18, withPad: " ", startingAt: 0)) \(value ?? "-")") }
                print("")
                var table = TextTable(headers: attempts.columns)
                table.rows = attempts.rows.map { $0.values.map { $0 ?? "-" } }
                print(attempts.rows.isEmpty ? "no attempts yet" : table.render())
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List events, newest first, filtered by merchant, order, state, kind, time.",
            discussion: "Example: flexcharge-outbox events list --state failed --since 2026-11-26T00:00:00Z --limit 50")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Merchant id.") var merchant: String?
        @Option(help: "The gateway's order id.") var order: String?
        @Option(help: "\(EventFilter.states.joined(separator: ", ")).") var state: String?
        @Option(help: "\(EventFilter.kinds.joined(separator: ", ")).") var kind: String?
        @Option(help: "Only events created at or after this ISO-8601 time.") var since: String?
        @Option(help: "At most this many (up to \(EventFilter.maximumLimit)).") var limit = 100

        func run() async throws {
            let filter = EventFilter(merchant: merchant, order: order, state: state, kind: kind,
                                     since: try since.map(parseTime(_:)), limit: limit)
            if let problem = filter.problem { throw CLIFailure.badInput("--\(problem)") }
            try await database.withSession { session in
                let result = try await EventQueries(session: session).search(filter)
                var table = TextTable(headers: result.columns)
                table.rows = result.rows.map { $0.values.map { $0 ?? "-" } }
                print(result.rows.isEmpty ? "no events match" : table.render())
            }
        }
    }
}

/// `flexcharge-outbox retry`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Requeue a failed or dead event (or all dead ones) with its own idempotency key.",
        discussion: """
            Any event but a transmit that may have reached FlexCharge is looked up before it is sent \
            again. An evaluate first sent longer ago than FlexCharge's idempotency window \
            (--idempotency-window-hours, the worker's setting; 24 h by default), e.g. dead after a long \
            FlexCharge outage, is requeued as a lookup only: the worker records the decision of the order it \
            finds at FlexCharge, and if there is none the event goes dead again with that reason. It \
            is never sent again: FlexCharge's idempotency window for its key has passed and resending \
            could charge twice.

            Examples:
              flexcharge-outbox retry 4711
              flexcharge-outbox retry --dead --merchant shoes-r-us --since 2026-11-26T00:00:00Z
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The event id (or use --dead).") var id: String?
    @Flag(help: "Requeue every dead event (with --merchant / --since to narrow).") var dead = false
    @Option(help: "With --dead: only this merchant.") var merchant: String?
    @Option(help: "With --dead: only events that died at or after this ISO-8601 time.") var since: String?
    @OptionGroup var window: IdempotencyWindowOption

    func run() async throws {
        guard (id != nil) != dead else { throw CLIFailure.badInput("give an event id or --dead, not both and not neither") }
        try await database.withSession { session in
            let actions = OperatorActions(
                session: session, actor: actor.name, retryPolicy: RetryPolicy(idempotencyWindow: window.idempotencyWindow))
            if let id {
                let eventID = try parseEventID(id)
                let action = try await operatorCall { try await actions.retry(eventID) }
                print("event \(eventID) requeued (\(action) first)")
                return
            }
            let sinceDate = try since.map(parseTime(_:))
            let result = try await actions.retryDead(merchant: merchant, since: sinceDate)
            print("\(result.requeued.count) dead event(s) requeued")
            for (id, reason) in result.refused { print("refused \(id): \(reason)") }
        }
    }
}

/// `flexcharge-outbox skip`.
struct SkipCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skip",
        abstract: "Mark a pending, failed or dead event skipped, with a reason (it is never sent).",
        discussion: "Example: flexcharge-outbox skip 4711 --reason 'duplicate of 4710, confirmed with the merchant'")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var actor: ActorOption
    @Argument(help: "The event id.") var id: String
    @Option(help: "Why (kept with the event).") var reason: String

    func run() async throws {
        let eventID = try parseEventID(id)
        try await database.withSession { session in
            _ = try await operatorCall { try await OperatorActions(session: session, actor: actor.name).skip(eventID, reason: reason) }
            print("event \(eventID) skipped")
        }
    }
}

private struct EventDump: Encodable {
    let event: [String: String?]
    let attempts: [[String: String?]]
}

private func columnName(_ row: PGRow, _ index: Int) throws -> String {
    row.columnNames[index]
}

/// An event id from the command line: a positive number, else bad input.
func parseEventID(_ text: String) throws -> Int64 {
    guard let id = Int64(text), id > 0 else { throw CLIFailure.badInput("event id must be a positive number, not \(text)") }
    return id
}

/// Parses an ISO-8601 time (`2026-11-26T00:00:00Z`) or a date (`2026-11-26`, midnight UTC).
func parseTime(_ text: String) throws -> Date {
    if let date = ISO8601DateFormatter().date(from: text) { return date }
    if let day = ReportCommand.day(text) { return day }
    throw CLIFailure.badInput("\(text) is not a time like 2026-11-26T00:00:00Z or a date like 2026-11-26")
}

/// Turns an ``OperatorError`` into exit status 2.
func operatorCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as OperatorError {
        throw CLIFailure.badInput(error.description)
    }
}
