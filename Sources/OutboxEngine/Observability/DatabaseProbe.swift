import LibPQ

/// `/readyz`'s database probe: `SELECT 1` on a connection of its own. Its statement is given up after
/// ``WorkerHealth/probeTimeout``; but a probe whose connection is still being (re)established waits
/// for libpq's `connect_timeout`, which the operator may have set far longer (`PGCONNECT_TIMEOUT=30`).
/// So a probe not answered by ``deadline``, whatever it is waiting for, is reported at once, and
/// readiness turns within seconds in every phase. When the statement fails first, its own error is
/// the reason.
enum DatabaseProbe {
    /// The statement's bound, plus the time the client gives an unanswered cancel request
    /// (`PGConfiguration.cancelGrace`, 2 s), plus a margin: the statement's own failure comes first
    /// whenever the connection is up.
    static let deadline: Duration = WorkerHealth.probeTimeout + .seconds(3)

    /// The reason given when the probe has had no answer by its deadline (no secrets: a duration).
    struct Overdue: Error, CustomStringConvertible {
        let after: Duration
        var description: String {
            "PostgreSQL did not answer within \(after) (the probe was still connecting or waiting for its answer)"
        }
    }

    /// Runs one probe. Returns when it is answered, late or not, and throws the probe's error when it
    /// fails. If the deadline passes first, `overdue` is called right then with ``Overdue`` and the
    /// probe is still awaited (one probe at a time on its connection, never a queue of them).
    static func run(on session: PGSession, deadline: Duration = deadline, overdue: @Sendable (Overdue) -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await session.query("SELECT 1", timeout: WorkerHealth.probeTimeout)
                return true
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                return false
            }
            if try await group.next() == true {
                group.cancelAll()  // the timer
                return
            }
            overdue(Overdue(after: deadline))
            // The probe itself: its answer (the database is back) or its error.
            while let answered = try await group.next() {
                if answered { return }
            }
        }
    }
}
