import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

/// What a pause or resume names: a merchant, a channel, an environment, or (none) the whole queue.
struct PauseScopeOptions: ParsableArguments {
    @Option(help: "Only this merchant (default: every merchant).") var merchant: String?
    @Option(help: "Only this channel: mit, cit_website or cit_call_center (default: all).") var channel: String?
    @Option(help: "Only events routed to this environment: sandbox or production (default: both).") var environment: String?
    @Flag(help: "The whole queue (required when no --merchant, --channel or --environment is given).") var all = false

    func scope() throws -> PauseScope {
        let scope = try operatorCallSync { try PauseScope(merchantID: merchant, channel: channel, environment: environment) }
        if scope == .wholeQueue && !all { throw CLIFailure.badInput("name a --merchant, --channel or --environment, or give --all for the whole queue") }
        if scope != .wholeQueue && all { throw CLIFailure.badInput("--all is the whole queue: give it alone") }
        return scope
    }
}

/// `flexcharge-outbox pause`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Hold back events of a merchant, channel, environment or the whole queue: they stay pending until resumed.",
        discussion: """
            Paused events are not claimed: they stay pending with no attempt spent (not skipped) and go \
            out when the pause is resumed. Events already being sent finish. Who paused, when and why is \
            kept, and shown by `pauses` and `status`. An environment is the one the event routes to (a \
            test event routes to the sandbox).

            Examples:
              flexcharge-outbox pause --merchant shop-1 --channel mit --reason 'new keys'
              flexcharge-outbox pause --environment production --reason maintenance
              flexcharge-outbox pause --all --reason 'database failover' --actor alice
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var actor: ActorOption
    @OptionGroup var scope: PauseScopeOptions
    @Option(help: "Why (kept in the audit).") var reason: String

    func run() async throws {
        let scope = try scope.scope()
        try await database.withSession { session in
            let pause = try await operatorCall { try await PauseBoard(session: session, actor: actor.name).pause(scope, reason: reason) }
            print("paused \(pause.scope) (pause \(pause.id)); resume with: flexcharge-outbox resume\(PauseCommand.arguments(pause.scope))")
        }
    }

    /// The options that name `scope` again, for the hint printed after a pause.
    static func arguments(_ scope: PauseScope) -> String {
        guard scope != .wholeQueue else { return " --all" }
        return [scope.merchantID.map { " --merchant \($0)" }, scope.channel.map { " --channel \($0)" },
                scope.environment.map { " --environment \($0)" }].compactMap { $0 }.joined()
    }
}

/// `flexcharge-outbox resume`.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "End a pause: its events go out at once (the workers are woken).",
        discussion: """
            Names the same scope as the pause (a narrower or wider pause is another pause: `pauses` \
            lists them).

            Examples:
              flexcharge-outbox resume --merchant shop-1 --channel mit --reason done
              flexcharge-outbox resume --all
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var actor: ActorOption
    @OptionGroup var scope: PauseScopeOptions
    @Option(help: "Why (kept in the audit; optional).") var reason: String?

    func run() async throws {
        let scope = try scope.scope()
        try await database.withSession { session in
            let pause = try await operatorCall { try await PauseBoard(session: session, actor: actor.name).resume(scope, reason: reason) }
            print("resumed \(pause.scope) (pause \(pause.id), paused by \(pause.pausedBy): \(pause.reason))")
        }
    }
}

/// `flexcharge-outbox pauses`.
struct PausesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pauses",
        abstract: "What is paused, by whom, when and why, with the pending events each holds back (--history: resumed ones too).",
        discussion: """
            Examples:
              flexcharge-outbox pauses
              flexcharge-outbox pauses --history --limit 20 --json
            """)

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Every pause, resumed ones too, newest first.") var history = false
    @Option(help: "With --history: at most this many.") var limit = 100
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        guard limit > 0 else { throw CLIFailure.badInput("--limit must be positive") }
        try await database.withSession { session in
            let board = PauseBoard(session: session, actor: "")
            let pauses = history ? try await board.history(limit: limit) : try await board.active()
            if json { print(try jsonText(pauses)); return }
            guard !pauses.isEmpty else { print(history ? "no pauses yet" : "nothing is paused"); return }
            print(PausesCommand.table(pauses, history: history))
        }
    }

    /// The pauses as a table (also printed by `status`).
    static func table(_ pauses: [Pause], history: Bool) -> String {
        let time = { (date: Date?) in date.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "-" }
        var headers = ["id", "merchant", "channel", "environment", "paused_by", "paused_at", "reason"]
        headers += history ? ["resumed_by", "resumed_at", "resume_reason"] : ["pending"]
        var table = TextTable(headers: headers)
        table.rows = pauses.map { pause in
            var row = ["\(pause.id)", pause.scope.merchantID ?? "*", pause.scope.channel ?? "*", pause.scope.environment ?? "*",
                       pause.pausedBy, time(pause.pausedAt), pause.reason]
            row += history ? [pause.resumedBy ?? "-", time(pause.resumedAt), pause.resumeReason ?? "-"]
                           : [pause.pendingEvents.map(String.init) ?? "-"]
            return row
        }
        return table.render()
    }
}

/// `flexcharge-outbox replay-skipped`.
struct ReplaySkippedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-skipped",
        abstract: "Requeue a merchant's events skipped while their channel was off, once the channel is on again.",
        discussion: """
            Only events skipped because their channel was off (not those an operator skipped), skipped \
            at or after --since, and only when their channel now routes somewhere. The rules of `retry` \
            hold: an event never sent is sent; one that may have reached FlexCharge is looked up first; an \
            evaluate first sent longer ago than the idempotency window (--idempotency-window-hours) is \
            requeued as a lookup only and never sent again.

            Examples:
              flexcharge-outbox replay-skipped --merchant shop-1 --since 2026-11-26
              flexcharge-outbox replay-skipped --merchant m --since 2026-11-26 --channel mit
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var actor: ActorOption
    @Option(help: "The merchant.") var merchant: String
    @Option(help: "Only events skipped at or after this ISO-8601 time or date.") var since: String
    @Option(help: "Only this channel: mit, cit_website or cit_call_center.") var channel: String?
    @OptionGroup var window: IdempotencyWindowOption

    func run() async throws {
        let sinceDate = try parseTime(since)
        try await database.withSession { session in
            let actions = OperatorActions(
                session: session, actor: actor.name, retryPolicy: RetryPolicy(idempotencyWindow: window.idempotencyWindow))
            let result = try await operatorCall { try await actions.replaySkipped(merchant: merchant, since: sinceDate, channel: channel) }
            print("\(result.requeued.count) skipped event(s) requeued")
            for (id, action) in result.requeued { print("requeued \(id) (\(action) first)") }
            for (id, reason) in result.refused { print("refused \(id): \(reason)") }
        }
    }
}

/// Turns an ``OperatorError`` thrown by synchronous code into exit status 2.
func operatorCallSync<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as OperatorError {
        throw CLIFailure.badInput(error.description)
    }
}
