import Foundation

/// A child process started with `posix_spawn`, its output going to files.
///
/// Foundation's `Process.waitUntilExit()` was seen to hang here when several children run at once
/// from concurrent tests; this waits with `waitpid` on a thread of its own, never on Swift
/// concurrency's cooperative pool.
///
/// A child never outlives its test: one still running when its `ChildProcess` is released (the
/// test threw, or an `#require` failed, before it stopped the child) is killed with SIGKILL, and
/// so is every child still running when the test process exits. ``withChildProcess(_:_:environment:stdin:_:)``
/// scopes a child to a block and waits for it to be gone.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String
    private let exit: ExitStatus

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
        // The child keeps no other descriptor of this process: one inherited while another test was
        // writing a file (a copy of the binary it is about to run) made that run fail with "Text
        // file busy" for as long as the child lived.
        if let closeFrom = Self.closeFrom { _ = closeFrom(&actions, 3) }

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        LiveChildren.shared.register()
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, nil, argv, envp)
        guard status == 0 else { throw TestSupportError("cannot start \(executable): errno \(status)") }
        pid = child
        exit = ExitStatus(pid: child)
        LiveChildren.shared.insert(exit)
        // The thread holds only the exit status, not `self`, so releasing the ChildProcess runs deinit.
        let exit = self.exit
        Thread { exit.waitForExit() }.start()
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), looked up at run time:
    /// Swift's Glibc module does not export it.
    private static var closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? {
        dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
            unsafeBitCast($0, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
        }
    }

    /// Sends a signal (SIGTERM, SIGKILL, ...), unless the child has already been reaped (its pid
    /// may belong to another process by then).
    public func send(_ signal: Int32) { exit.signal(signal) }

    /// Waits for the child to exit and returns its status and output.
    public func wait() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            Thread { [self] in
                let status = exit.waitForStatus()
                continuation.resume(returning: ProcessResult(status: status, stdout: output(stdoutPath), stderr: output(stderrPath)))
            }.start()
        }
    }

    /// Kills the child (SIGKILL) if it still runs and waits until it is gone.
    @discardableResult
    public func stop() async -> ProcessResult {
        send(SIGKILL)
        return await wait()
    }

    /// True while the child runs.
    public var isRunning: Bool { exit.status == nil }

    /// What the child printed so far.
    public var stdout: String { output(stdoutPath) }
    public var stderr: String { output(stderrPath) }

    private func output(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    deinit {
        exit.signal(SIGKILL)  // a child still running here belongs to a test that failed or threw
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}

/// Starts a child for the duration of `body` and makes sure it is gone when `body` returns or
/// throws: a child still running then is killed (SIGKILL) and waited for.
public func withChildProcess<T>(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
    _ body: (ChildProcess) async throws -> T
) async throws -> T {
    let child = try ChildProcess(executable, arguments, environment: environment, stdin: stdin)
    do {
        let result = try await body(child)
        await child.stop()
        return result
    } catch {
        await child.stop()
        throw error
    }
}

/// How a child process ended.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// A child's exit status, set once by the thread that reaps it.
///
/// The child is reaped (its pid freed for reuse) under `lock`, and signals are sent under the same
/// lock only while it is not reaped, so a signal never reaches another process that got the pid.
private final class ExitStatus: @unchecked Sendable {
    // @unchecked: `exitStatus` is guarded by `lock`.
    let pid: pid_t
    private let lock = NSCondition()
    private var exitStatus: Int32?

    init(pid: pid_t) { self.pid = pid }

    var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return exitStatus
    }

    /// On a thread of its own: waits until the child has exited (without reaping it), then reaps it
    /// under the lock.
    func waitForExit() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
        lock.lock()
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        // Exit code, or 128 + signal number like a shell.
        exitStatus = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        lock.broadcast()
        lock.unlock()
        LiveChildren.shared.remove(self)
    }

    func waitForStatus() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        while exitStatus == nil { lock.wait() }
        return exitStatus!
    }

    func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus == nil { kill(pid, signal) }
    }
}

/// Every child not yet reaped, killed when the test process exits (a test abandoned at its time
/// limit, or a runner that finishes while a child of a failed test still runs).
private final class LiveChildren: @unchecked Sendable {
    // @unchecked: `children` is guarded by `lock`.
    static let shared = LiveChildren()
    private let lock = NSLock()
    private var children: [ObjectIdentifier: ExitStatus] = [:]
    private var registered = false

    /// Installs the exit handler, once.
    func register() {
        lock.lock()
        defer { lock.unlock() }
        guard !registered else { return }
        registered = true
        atexit { LiveChildren.shared.killAll() }
    }

    func insert(_ child: ExitStatus) {
        lock.lock()
        defer { lock.unlock() }
        children[ObjectIdentifier(child)] = child
    }

    func remove(_ child: ExitStatus) {
        lock.lock()
        defer { lock.unlock() }
        children[ObjectIdentifier(child)] = nil
    }

    func killAll() {
        lock.lock()
        let all = Array(children.values)
        lock.unlock()
        for child in all { child.signal(SIGKILL) }
    }
}
