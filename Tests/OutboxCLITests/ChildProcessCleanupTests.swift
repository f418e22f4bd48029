import Foundation
import Testing
import TestSupport

/// A spawned process never outlives the test that started it, even when the test fails or throws
/// before stopping it (a worker left running would keep claiming events of later tests' databases
/// and hold the machine's two cores).
@Suite(.timeLimit(.minutes(1))) struct ChildProcessCleanupTests {
    struct TestFailed: Error {}

    /// A `sleep` whose argument marks it as ours, so a reused pid is not mistaken for it.
    static func sleeper() -> (executable: String, arguments: [String]) {
        ("/bin/sleep", ["\(600 + Int.random(in: 0..<1000)).\(Int.random(in: 100..<1000))"])
    }

    /// True while a process with this pid runs with this argument (it may be a zombie until reaped).
    static func isAlive(_ pid: pid_t, argument: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard words.contains(argument) else { return false }
        // A zombie (exited, not yet reaped) is gone as far as the test is concerned.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false)
    }

    /// Polls `condition` for up to 10 s.
    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Waits until the child runs `sleep` (between spawn and exec its command line is not yet ours).
    static func started(_ pid: pid_t, argument: String) async -> Bool {
        await eventually { isAlive(pid, argument: argument) }
    }

    @Test func aChildOfATestThatThrowsIsKilledWhenItsHandleIsReleased() async throws {
        let (executable, arguments) = Self.sleeper()
        var pid: pid_t = 0
        // The shape of a failing test: it starts a worker, then throws before it stops it.
        func failingTest() async throws {
            let child = try ChildProcess(executable, arguments)
            pid = child.pid
            try #require(await Self.started(pid, argument: arguments[0]))
            throw TestFailed()
        }
        await #expect(throws: TestFailed.self) { try await failingTest() }
        #expect(pid > 0)
        #expect(await Self.eventually { !Self.isAlive(pid, argument: arguments[0]) }, "the child of a failed test is still running")
    }

    @Test func withChildProcessKillsAndReapsTheChildWhenItsBodyThrows() async throws {
        let (executable, arguments) = Self.sleeper()
        var spawned: ChildProcess?
        await #expect(throws: TestFailed.self) {
            try await withChildProcess(executable, arguments) { child in
                spawned = child
                try #require(await Self.started(child.pid, argument: arguments[0]))
                throw TestFailed()
            }
        }
        let child = try #require(spawned)
        // Gone when withChildProcess returns: killed and reaped, not merely signalled.
        #expect(!child.isRunning)
        #expect(!Self.isAlive(child.pid, argument: arguments[0]))
        #expect(await child.wait().status == 128 + SIGKILL)
    }

    @Test func withChildProcessLeavesAChildThatExitedByItselfAlone() async throws {
        let status = try await withChildProcess("/bin/sh", ["-c", "echo done; exit 3"]) { child in
            await child.wait()
        }
        #expect(status.status == 3)
        #expect(status.stdout == "done\n")
    }
}

extension ChildProcessCleanupTests {
    @Test func aChildInheritsNoDescriptorOfTheTestProcessButItsOwnThree() async throws {
        // A file this process has open for writing (as a test copying a binary has).
        let path = NSTemporaryDirectory() + "open-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        let listing = try await withChildProcess("/bin/sh", ["-c", "ls /proc/$$/fd"]) { await $0.wait() }
        #expect(listing.status == 0, "\(listing.stderr)")
        let descriptors = Set(listing.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) })
        // 0-2, plus the one `ls` opens to read the directory.
        #expect(!descriptors.contains(Int(fd)), "the child inherited \(descriptors.sorted())")
        #expect(descriptors.count <= 4, "\(descriptors.sorted())")
    }
}
