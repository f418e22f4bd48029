import Foundation
import LibPQ
import Testing
import TestSupport

/// `merchant set --rate-limit`: stored, shown, audited like any merchant setting, removable, and
/// bad values refused with one line and status 2.
@Suite struct RateLimitCommandTests {
    func cli(_ db: TestDatabase, _ arguments: [String]) async throws -> ProcessResult {
        try await runCLI(arguments, environment: ["DATABASE_URL": db.url])
    }

    @Test func theRateLimitIsSetShownAuditedAndRemoved() async throws {
        try await TestDatabase.with { db in
            #expect(try await cli(db, ["merchant", "add", "shoes", "--actor", "alice"]).status == 0)
            let set = try await cli(db, ["merchant", "set", "shoes", "--rate-limit", "20/s", "--actor", "alice"])
            #expect(set.status == 0, "\(set.stderr)")
            #expect(try await cli(db, ["merchant", "show", "shoes"]).stdout.contains("rate limit: 20/s per environment"))
            let stored = try await db.session().query(
                "SELECT rate_limit_per_second FROM flexcharge.merchants WHERE merchant_id = 'shoes'").first!.decode(0, as: Int?.self)
            #expect(stored == 20)
            #expect(try await cli(db, ["merchant", "set", "shoes", "--rate-limit", "none", "--actor", "bob"]).status == 0)
            #expect(try await cli(db, ["merchant", "show", "shoes"]).stdout.contains("rate limit: none"))
            let history = try await cli(db, ["merchant", "history", "shoes"]).stdout
            #expect(history.contains("alice  set  rate_limit: none → 20/s"), "\(history)")
            #expect(history.contains("bob  set  rate_limit: 20/s → none"), "\(history)")
        }
    }

    @Test(arguments: [
        (["merchant", "set", "shoes", "--rate-limit", "fast"], "--rate-limit must be N/s"),
        (["merchant", "set", "shoes", "--rate-limit", "0/s"], "--rate-limit must be N/s"),
        (["merchant", "set", "shoes", "--site", "a.example", "--rate-limit", "5/s"], "per merchant, not per site"),
    ])
    func badRateLimitsAreRefused(arguments: [String], expected: String) async throws {
        try await TestDatabase.with { db in
            _ = try await cli(db, ["merchant", "add", "shoes", "--actor", "alice"])
            let run = try await cli(db, arguments + ["--actor", "alice"])
            #expect(run.status == 2, "\(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1)
            #expect(run.stderr.contains(expected), "\(run.stderr)")
        }
    }
}
