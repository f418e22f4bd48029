import Foundation

/// A child process started with `posix_spawn`, its output going to files.
///
/// Foundation's `Process.waitUntilExit()` was seen to hang here when several children run at once
/// from concurrent tests; this waits with `waitpid` on a thread of its own, never on Swift
/// concurrency's cooperative pool.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `exitStatus` is written once by the waiting thread, under `lock`.
    public let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String
    private let lock = NSCondition()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; `environment` replaces the child's environment when
    /// given; `stdin` is fed from a file.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil) throws {
        let base = NSTemporaryDirectory() + "child-\(UUID().uuidString)"
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        let stdinPath = base + ".in"
        FileManager.default.createFile(atPath: stdinPath, contents: Data((stdin ?? "").utf8))
        defer { try? FileManager.default.removeItem(atPath: stdinPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, nil, argv, envp)
        guard status == 0 else { throw TestSupportError("cannot start \(executable): errno \(status)") }
        pid = child
        let spawned = child
        let waiter = Thread { [self] in
            var raw: Int32 = 0
            while waitpid(spawned, &raw, 0) == -1 && errno == EINTR {}
            lock.lock()
            // Exit code, or 128 + signal number like a shell.
            exitStatus = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            lock.broadcast()
            lock.unlock()
        }
        waiter.start()
    }

    /// Sends a signal (SIGTERM, SIGKILL, ...).
    public func send(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the child to exit and returns its status and output.
    public func wait() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            Thread { [self] in
                lock.lock()
                while exitStatus == nil { lock.wait() }
                let status = exitStatus!
                lock.unlock()
                continuation.resume(returning: ProcessResult(status: status, stdout: output(stdoutPath), stderr: output(stderrPath)))
            }.start()
        }
    }

    /// True while the child runs.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return exitStatus == nil
    }

    /// What the child printed so far.
    public var stdout: String { output(stdoutPath) }
    public var stderr: String { output(stderrPath) }

    private func output(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}

/// How a child process ended.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}
