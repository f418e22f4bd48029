import CLibPQ
import Foundation
@testable import LibPQ
import Testing
import TestSupport

/// A process that used a session exits without OpenSSL's `atexit` clean-up, which would race with
/// session threads still ending (see ``OpenSSLExitHandler``; CI once aborted `migrate` so, with
/// `malloc_consolidate(): unaligned fastbin chunk detected`).
///
/// The race itself is rare (it did not recur in 3 000 local `migrate` runs), so the test checks its
/// cause, deterministically: a child process (this test bundle, running only ``child()``) registers an
/// exit handler of its own, then connects and exits. Exit handlers run last-registered first, so OpenSSL's,
/// registered by libpq after ours, would run before it: ours then finds OpenSSL stopped.
@Suite struct OpenSSLExitTests {
    static let childVariable = "FLEXCHARGE_TEST_OPENSSL_EXIT_URL"

    @Test func openSSLIsNotCleanedUpUnderThreadsWhenTheProcessExits() async throws {
        try await TestDatabase.with { db in
            let child = try ChildProcess(
                CommandLine.arguments[0],
                ["--testing-library", "swift-testing", "--filter", "OpenSSLExitTests/child"],
                environment: ProcessInfo.processInfo.environment.merging([Self.childVariable: db.url]) { $1 })
            let result = await child.wait()
            #expect(result.stdout.contains("openssl at exit: alive"), "status \(result.status): \(result.stdout.suffix(2000)) \(result.stderr.suffix(2000))")
            #expect(!result.stdout.contains("openssl at exit: stopped"))
            #expect(result.status == 0)
        }
    }

    /// The child's part: runs only in the process started above.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childVariable] != nil))
    func child() async throws {
        let url = try #require(ProcessInfo.processInfo.environment[Self.childVariable])
        atexit {
            // OPENSSL_INIT_BASE_ONLY (0x40000, internal to OpenSSL's header): returns 0 once OPENSSL_cleanup
            // has run, without raising an error into its freed state.
            let alive = OPENSSL_init_crypto(0x0004_0000, nil) == 1
            let line = alive ? "openssl at exit: alive\n" : "openssl at exit: stopped\n"
            _ = line.withCString { write(1, $0, strlen($0)) }
            _exit(alive ? 0 : 3)
        }
        // SCRAM over TCP: libpq hashes and draws its nonce with OpenSSL on the session's thread.
        let session = PGSession(configuration: PGConfiguration(url: url), name: "openssl-exit")
        try await session.query("SELECT 1")
        await session.close()
        exit(0)
    }
}
