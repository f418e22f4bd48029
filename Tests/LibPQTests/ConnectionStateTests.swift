@testable import LibPQ
import Testing

/// The session's reconnect rules, the statement deadline and the connection defaults, without a
/// database.
@Suite struct ConnectionStateTests {
    @Test func theFirstStatementConnectsAndLaterOnesProceed() {
        var state = PGConnectionState()
        #expect(state.beforeStatement(connectionOpen: false) == .connect(reconnect: false))
        let channels = state.connected()
        #expect(channels == [])
        #expect(state.generation == 1)
        #expect(state.beforeStatement(connectionOpen: true) == .proceed)
    }

    @Test func aLostConnectionIsReplacedAndItsListensReissued() {
        var state = PGConnectionState()
        _ = state.connected()
        state.listened("flexcharge_outbox")
        state.listened("other")
        state.listened("flexcharge_outbox")
        let first = state.connectionLost()
        let second = state.connectionLost()
        #expect(first)
        #expect(!second, "reported once per connection")
        // Even if libpq claimed the socket were fine, a lost connection is not used again.
        #expect(state.beforeStatement(connectionOpen: true) == .connect(reconnect: true))
        let relisten = state.connected()
        #expect(relisten == ["flexcharge_outbox", "other"])
        #expect(state.generation == 2)
        #expect(state.beforeStatement(connectionOpen: true) == .proceed)
        state.unlistened("other")
        _ = state.connectionLost()
        let relistenOne = state.connected()
        #expect(relistenOne == ["flexcharge_outbox"])
    }

    @Test func aLossBeforeAnyConnectionIsNotReported() {
        var state = PGConnectionState()
        let reported = state.connectionLost()
        #expect(!reported)
        #expect(state.beforeStatement(connectionOpen: false) == .connect(reconnect: false))
    }

    @Test func noReconnectInsideATransaction() {
        var state = PGConnectionState()
        _ = state.connected()
        state.beginTransaction()
        #expect(state.beforeStatement(connectionOpen: true) == .proceed)
        _ = state.connectionLost()
        guard case .fail(let error) = state.beforeStatement(connectionOpen: false) else {
            Issue.record("a transaction's statement reconnected")
            return
        }
        #expect(error.kind == .connection)
        #expect(error.message.contains("transaction"))
        state.endTransaction()
        #expect(state.beforeStatement(connectionOpen: false) == .connect(reconnect: true))
    }

    @Test func aPinnedSessionFailsInsteadOfReconnectingUntilUnpinned() throws {
        var state = PGConnectionState()
        #expect(throws: PGError.self) { try state.pin(reason: "holds a lock") }  // nothing to pin yet
        _ = state.connected()
        try state.pin(reason: "holds the migration lock")
        #expect(throws: PGError.self) { try state.pin(reason: "twice") }
        #expect(state.beforeStatement(connectionOpen: true) == .proceed)
        _ = state.connectionLost()
        guard case .fail(let error) = state.beforeStatement(connectionOpen: false) else {
            Issue.record("a pinned session reconnected")
            return
        }
        #expect(error.kind == .connection)
        #expect(error.message == "the connection was lost; not reconnecting because this session holds the migration lock")
        // Still refused on the next call: nothing reconnects behind the owner's back.
        #expect(state.beforeStatement(connectionOpen: false) == .fail(error))
        // A lost connection cannot be pinned again.
        state.unpin()
        #expect(throws: PGError.self) { try state.pin(reason: "again") }
        #expect(state.beforeStatement(connectionOpen: false) == .connect(reconnect: true))
        _ = state.connected()
        #expect(state.generation == 2)
    }

    @Test func aClosedSessionRefusesEverything() {
        var state = PGConnectionState()
        _ = state.connected()
        state.close()
        #expect(state.beforeStatement(connectionOpen: true) == .fail(PGError(.usage, "the session is closed")))
        #expect(throws: PGError.self) { try state.pin(reason: "x") }
    }

    // MARK: The statement deadline

    @Test func aSilentServerIsGivenUpAtTheDeadline() {
        let start = ContinuousClock.now
        var wait = StatementWait(giveUpAfter: .seconds(7), cancellable: true, now: start)
        let early = wait.step(now: start + .seconds(3), taskCancelled: false)
        #expect(early == .keepWaiting)
        #expect(wait.pollMilliseconds(now: start + .seconds(3)) == 100)
        #expect(wait.pollMilliseconds(now: start + .milliseconds(6_960)) == 40)
        guard case .giveUp(let error) = wait.step(now: start + .seconds(7), taskCancelled: false) else {
            Issue.record("not given up at the deadline")
            return
        }
        #expect(error.kind == .connection)
        #expect(error.isConnectionFailure)
        #expect(error.message.hasPrefix("PostgreSQL did not answer within 7.0 seconds"))
    }

    @Test func aCancelledTaskCancelsOnceThenGivesUpAfterTheGrace() {
        let start = ContinuousClock.now
        var wait = StatementWait(giveUpAfter: nil, cancellable: true, now: start)
        let steps = [
            wait.step(now: start + .seconds(100), taskCancelled: false),
            wait.step(now: start + .seconds(100), taskCancelled: true),
            wait.step(now: start + .seconds(101), taskCancelled: true),
        ]
        #expect(steps == [.keepWaiting, .sendCancel, .keepWaiting])
        guard case .giveUp(let error) = wait.step(now: start + .seconds(102), taskCancelled: true) else {
            Issue.record("not given up after the cancel grace")
            return
        }
        #expect(error.kind == .cancelled)
        // The server's answer to our cancel reads as a cancellation; other errors pass unchanged.
        let answered = wait.translate(PGError(.server, "canceling statement due to user request", sqlState: "57014"))
        #expect(answered.kind == .cancelled)
        #expect(wait.translate(PGError(.server, "boom", sqlState: "23505")).kind == .server)
        // The grace never extends an earlier deadline.
        var short = StatementWait(giveUpAfter: .milliseconds(500), cancellable: true, now: start)
        let cancel = short.step(now: start, taskCancelled: true)
        #expect(cancel == .sendCancel)
        #expect(short.giveUpAt == start + .milliseconds(500))
    }

    @Test func aStatementTimeoutFromTheServerIsNotACancellation() {
        let start = ContinuousClock.now
        let wait = StatementWait(giveUpAfter: .seconds(7), cancellable: true, now: start)
        #expect(wait.translate(PGError(.server, "canceling statement due to statement timeout", sqlState: "57014")).kind == .server)
    }

    @Test func rollbackIgnoresCancellation() {
        let start = ContinuousClock.now
        var wait = StatementWait(giveUpAfter: .seconds(7), cancellable: false, now: start)
        let step = wait.step(now: start + .seconds(1), taskCancelled: true)
        #expect(step == .keepWaiting)
    }

    // MARK: Connection defaults

    @Test func theDefaultsComeBeforeTheUsersConninfoSoItWins() {
        let configuration = PGConfiguration(url: "postgresql://u@db/app?keepalives_idle=30")
        let parameters = configuration.connectionParameters(environment: [:])
        let keywords = parameters.map(\.0)
        #expect(keywords == [
            "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
            "dbname", "application_name",
        ])
        #expect(parameters.first { $0.0 == "dbname" }?.1 == "postgresql://u@db/app?keepalives_idle=30")
    }

    @Test func aDefaultWhoseVariableIsSetIsLeftToLibpq() {
        let parameters = PGConfiguration(url: nil).connectionParameters(environment: ["PGCONNECT_TIMEOUT": "30"])
        #expect(!parameters.contains { $0.0 == "connect_timeout" })
        #expect(parameters.contains { $0 == ("keepalives_idle", "5") })
    }
}
