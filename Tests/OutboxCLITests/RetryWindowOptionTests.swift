import Foundation
import LibPQ
import Testing
import TestSupport

/// `flexcharge-outbox retry --idempotency-window-hours` reaches the rule the worker applies
/// (RetryPolicy): the same evaluate, first sent 25 h ago, is past a 24 h window and within a 48 h one.
@Suite struct RetryWindowOptionTests {
    @Test func theRetryCommandsWindowIsTheOneGivenLikeTheWorkers() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let ids = try await SeededDataset.seed(session)
            let env = ["DATABASE_URL": db.url]
            let deadEvaluate = ids[8]  // o8
            func retry(_ options: [String]) async throws -> (ProcessResult, String?) {
                try await session.execute(
                    "UPDATE flexcharge.outbox SET state = 'dead', first_claimed_at = now() - interval '25 hours' WHERE id = $1", [deadEvaluate])
                let run = try await runCLI(["retry", String(deadEvaluate), "--actor", "bob"] + options, environment: env)
                let note = try await session.query(
                    "SELECT error FROM flexcharge.attempts WHERE event_id = $1 AND action = 'operator_retry' ORDER BY id DESC LIMIT 1",
                    [deadEvaluate]).first?.decode(0, as: String.self)
                return (run, note)
            }
            let (wide, wideNote) = try await retry(["--idempotency-window-hours", "48"])
            #expect(wide.status == 0, "\(wide.stderr)")
            #expect(wideNote == "requeued (lookup first)", "\(wideNote ?? "no note")")

            let (standard, standardNote) = try await retry([])
            #expect(standard.status == 0, "\(standard.stderr)")
            #expect(standardNote?.contains("more than 24 h ago, past FlexCharge's idempotency window") == true, "\(standardNote ?? "no note")")

            let (short, shortNote) = try await retry(["--idempotency-window-hours", "1.5"])
            #expect(short.status == 0, "\(short.stderr)")
            #expect(shortNote?.contains("more than 1.5 h ago") == true, "\(shortNote ?? "no note")")

            let refused = try await runCLI(["retry", String(deadEvaluate), "--idempotency-window-hours", "0"], environment: env)
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("--idempotency-window-hours must be positive"), "\(refused.stderr)")
        }
    }
}
