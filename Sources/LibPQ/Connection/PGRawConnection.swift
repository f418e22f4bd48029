import CLibPQ
import Foundation

/// The libpq connection handle and every call made on it.
///
/// Deliberately not `Sendable`: it is owned by one ``PGSession`` actor, which runs on a
/// ``DedicatedThreadExecutor``, so libpq's "one thread at a time per connection" rule holds.
///
/// Nothing here waits without a bound it can see: connecting and statements use libpq's
/// asynchronous calls on a non-blocking socket and `poll(2)` in slices of at most 100 ms, checking
/// the statement's deadline (``StatementWait``) and the awaiting task's cancellation between slices.
/// A cancelled task sends the server a cancel request (`PQcancel`); a server that does not answer
/// in time loses the connection rather than the caller its thread.
final class PGRawConnection {
    private var handle: OpaquePointer?
    private let configuration: PGConfiguration
    /// The session's own statement timeout (applied unless the user set one).
    private(set) var statementTimeout: Duration?
    /// The server-side `statement_timeout` in force on this connection (nil: none).
    private(set) var effectiveStatementTimeout: Duration?
    /// The user set `statement_timeout` (URL options, PGOPTIONS, role or database settings): left alone.
    private(set) var userSetStatementTimeout = false

    init(configuration: PGConfiguration) {
        self.configuration = configuration
        self.statementTimeout = configuration.statementTimeout
        self.effectiveStatementTimeout = configuration.statementTimeout
    }

    deinit { close() }

    var isOpen: Bool { handle != nil && PQstatus(handle) == CONNECTION_OK }

    /// Opens the connection (libpq falls back to the `PG*` environment variables for anything the
    /// conninfo leaves out) and fixes the session settings the decoders rely on. Gives up after the
    /// effective `connect_timeout` (all hosts together), or when the awaiting task is cancelled.
    func open() throws(PGError) {
        close()
        _ = OpenSSLExitHandler.disabled
        let parameters = configuration.connectionParameters()
        let conn: OpaquePointer? = withCStringArray(parameters.map(\.0)) { k in
            withCStringArray(parameters.map(\.1)) { v in PQconnectStartParams(k, v, 1) }
        }
        guard let conn else { throw PGError(.connection, "out of memory while connecting") }
        // libpq enforces connect_timeout only in its blocking PQconnectdb: enforce it here.
        let connectTimeout = Self.option(conn, "connect_timeout").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
        let limit: Duration? = connectTimeout > 0 ? .seconds(max(connectTimeout, 2)) : nil
        let deadline = limit.map { ContinuousClock.now + $0 }
        // Like a statement, connecting is interrupted by a cancellation that arrives while it waits.
        let interruptible = !Task.isCancelled
        var status = PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING
        while status != PGRES_POLLING_OK {
            if status == PGRES_POLLING_FAILED {
                let message = Self.connectionMessage(conn, conninfo: configuration.conninfo)
                PQfinish(conn)
                throw PGError(.connection, message)
            }
            let events = Int16(status == PGRES_POLLING_READING ? POLLIN : POLLOUT)
            while true {
                if interruptible && Task.isCancelled {
                    PQfinish(conn)
                    throw PGError(.cancelled, "connecting to PostgreSQL was cancelled")
                }
                var slice: Int32 = 100
                if let deadline, let limit {
                    let remaining = deadline - ContinuousClock.now
                    if remaining <= .zero {
                        PQfinish(conn)
                        throw PGError(.connection, "PostgreSQL did not complete the connection within \(limit) (connect_timeout)")
                    }
                    slice = min(slice, Int32(max(1, remaining.milliseconds)))
                }
                var fd = pollfd(fd: PQsocket(conn), events: events, revents: 0)
                let ready = poll(&fd, 1, slice)
                if ready > 0 || (ready < 0 && errno != EINTR) { break }
            }
            status = PQconnectPoll(conn)
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)  // NOTICEs are not printed to stderr
        guard PQsetnonblocking(conn, 1) == 0 else {
            PQfinish(conn)
            throw PGError(.connection, "could not make the connection non-blocking")
        }
        handle = conn
        do {
            try applySessionSettings(deadline: limit)
        } catch {
            close()
            throw error
        }
    }

    /// Fixed settings, and the statement timeout unless the user set one (its source is then not
    /// `default`): one round trip.
    private func applySessionSettings(deadline limit: Duration?) throws(PGError) {
        let ours = statementTimeout.map { max(1, $0.milliseconds) } ?? 0
        let result = try execute(
            """
            SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3;
            SELECT source <> 'default' AS user_set, setting::bigint AS ms,
                   CASE WHEN source = 'default' THEN set_config('statement_timeout', '\(ours)', false) END AS applied
              FROM pg_settings WHERE name = 'statement_timeout'
            """, [], wait: StatementWait(giveUpAfter: limit ?? .seconds(10), cancellable: !Task.isCancelled, now: .now))
        let userSet = (try? result.first?.decode("user_set", as: Bool.self)) ?? false
        userSetStatementTimeout = userSet
        if userSet {
            let ms = (try? result.first?.decode("ms", as: Int64.self)) ?? 0
            effectiveStatementTimeout = ms > 0 ? .milliseconds(ms) : nil
        } else {
            effectiveStatementTimeout = statementTimeout
        }
    }

    /// Changes the session's statement timeout (nil: none), now and on later connections, unless
    /// the user set one.
    func setStatementTimeout(_ timeout: Duration?) throws(PGError) {
        statementTimeout = timeout
        guard isOpen, !userSetStatementTimeout else { return }
        _ = try execute("SET statement_timeout = \(timeout.map { max(1, $0.milliseconds) } ?? 0)", [], wait: wait(timeout: nil))
        effectiveStatementTimeout = timeout
    }

    /// The bound of the next statement: `timeout` when given (client-side only: at it the
    /// connection is given up), else the effective statement timeout plus
    /// ``PGConfiguration/cancelGrace`` (the server's own timeout should have answered by then).
    ///
    /// The task's cancellation interrupts a statement that is waiting when it arrives. A statement
    /// started by a task that is already cancelled runs (bounded by its deadline): clean-up after
    /// cancellation (ROLLBACK, giving events back, a last flush of outcomes) still reaches the
    /// database, and a retry loop that does not check for cancellation cannot spin on instant failures.
    func wait(timeout: Duration?, cancellable: Bool = true) -> StatementWait {
        let limit = timeout ?? effectiveStatementTimeout.map { $0 + PGConfiguration.cancelGrace }
        return StatementWait(giveUpAfter: limit, cancellable: cancellable && !Task.isCancelled, now: .now)
    }

    /// The value libpq settled on for `keyword` on the open connection (for tests and diagnostics;
    /// never the password).
    func settledOption(_ keyword: String) -> String? {
        guard let handle, keyword != "password" else { return nil }
        return Self.option(handle, keyword)
    }

    /// An `IPPROTO_TCP` option of the connection's socket, as the kernel has it (for tests).
    func tcpSocketOption(_ name: Int32) -> Int32? {
        guard let handle else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(PQsocket(handle), Int32(IPPROTO_TCP), name, &value, &length) == 0 else { return nil }
        return value
    }

    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// Detects a connection the server has closed while it sat idle (restart, admin kill). Returns
    /// false (and closes it) when it is closed or broken.
    func checkAlive() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            close()
            return false
        }
        // Something arriving on an idle connection is a notification, or the server's goodbye
        // (FATAL 57P01 on shutdown) followed by end of file: read until the socket is quiet.
        for _ in 0..<4 {
            var fd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, 0) > 0 else { return true }
            if fd.revents & Int16(POLLHUP | POLLERR) != 0 || PQconsumeInput(handle) == 0
                || PQstatus(handle) != CONNECTION_OK
            {
                close()
                return false
            }
        }
        return true
    }

    /// Runs one statement (or, without parameters, several separated by semicolons) with
    /// parameters in the text format (or binary where a ``PGParameter`` says so). `$n` placeholders
    /// only: values never become part of the SQL text. Returns the last statement's result.
    func execute(_ sql: String, _ parameters: [PGParameter], wait: StatementWait) throws(PGError) -> PGResult {
        guard let handle else { throw PGError(.connection, "not connected") }
        let sent: Int32
        if parameters.isEmpty {
            sent = PQsendQuery(handle, sql)
        } else {
            sent = withParameterArrays(parameters) { types, values, lengths, formats in
                PQsendQueryParams(handle, sql, Int32(parameters.count), types, values, lengths, formats, 0)
            }
        }
        guard sent == 1 else { throw lastError("could not send the statement") }
        var wait = wait
        var last: PGResult?
        var firstError: PGError?
        while true {
            try awaitResult(handle, &wait)
            guard let result = PQgetResult(handle) else { break }
            do {
                let copied = try consume(result)
                if firstError == nil { last = copied }
            } catch {
                if firstError == nil { firstError = error }
            }
            if PQstatus(handle) != CONNECTION_OK { break }
        }
        if let firstError { throw wait.translate(firstError) }
        guard let last else { throw lastError("no result from the server") }
        return last
    }

    /// Waits until a result can be read without blocking: flushes what is still unsent, reads what
    /// arrives, and applies the statement's deadline and the task's cancellation. Returns (and
    /// lets `PQgetResult` report) when the connection broke; throws after giving the connection up.
    private func awaitResult(_ handle: OpaquePointer, _ wait: inout StatementWait) throws(PGError) {
        while true {
            let flushed = PQflush(handle)
            if flushed < 0 { return }
            if flushed == 0 && PQisBusy(handle) == 0 { return }
            let now = ContinuousClock.now
            switch wait.step(now: now, taskCancelled: Task.isCancelled) {
            case .keepWaiting:
                break
            case .sendCancel:
                requestCancel()
            case .giveUp(let error):
                requestCancel()
                close()
                throw error
            }
            let events = Int16(POLLIN) | (flushed == 1 ? Int16(POLLOUT) : 0)
            var fd = pollfd(fd: PQsocket(handle), events: events, revents: 0)
            let ready = poll(&fd, 1, wait.pollMilliseconds(now: now))
            if ready > 0 && fd.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                if PQconsumeInput(handle) == 0 { return }
            }
        }
    }

    /// Asks the server to cancel the running statement, from another thread (`PQcancel` opens a
    /// connection of its own and may wait on a server that does not answer).
    private func requestCancel() {
        guard let handle, let cancel = PQgetCancel(handle) else { return }
        let host = PQhost(handle).map { String(cString: $0) } ?? ""
        let port = PQport(handle).map { String(cString: $0) } ?? ""
        CancelRequests.send(cancel, server: host + ":" + port)
    }

    /// Waits up to `timeoutMilliseconds` for notifications on a `LISTEN`ing connection.
    func waitForNotifications(timeoutMilliseconds: Int32) throws(PGError) -> [PGNotification] {
        guard let handle else { throw PGError(.connection, "not connected") }
        var received = drainNotifications()
        if !received.isEmpty { return received }
        var fd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        let ready = poll(&fd, 1, timeoutMilliseconds)
        if ready > 0 {
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                throw PGError(.connection, "the listening connection was closed by the server")
            }
            received = drainNotifications()
        }
        return received
    }

    private func drainNotifications() -> [PGNotification] {
        var received: [PGNotification] = []
        while let notify = PQnotifies(handle) {
            received.append(
                PGNotification(
                    channel: String(cString: notify.pointee.relname),
                    payload: String(cString: notify.pointee.extra),
                    processID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }

    /// Converts a libpq result into a ``PGResult`` (which takes it over, freeing it with its last row)
    /// or a ``PGError`` (the result freed at once).
    private func consume(_ result: OpaquePointer?) throws(PGError) -> PGResult {
        guard let result else { throw lastError("no result from the server") }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE, PGRES_EMPTY_QUERY:
            return PGResult(owning: result)
        default:
            defer { PQclear(result) }
            throw Self.serverError(result, connection: handle)
        }
    }

    private func lastError(_ fallback: String) -> PGError {
        let message = handle.map { Self.firstLine(String(cString: PQerrorMessage($0))) } ?? ""
        return PGError(.connection, message.isEmpty ? fallback : message)
    }

    private static func serverError(_ result: OpaquePointer, connection: OpaquePointer?) -> PGError {
        func field(_ code: UInt8) -> String? {
            guard let value = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field(UInt8(ascii: "C"))
        let primary = field(UInt8(ascii: "M")) ?? firstLine(String(cString: PQresultErrorMessage(result)))
        let broken = connection.map { PQstatus($0) != CONNECTION_OK } ?? true
        return PGError(
            (sqlState == nil && broken) ? .connection : .server,
            primary.isEmpty ? "the server reported an error without a message" : primary,
            sqlState: sqlState,
            column: field(UInt8(ascii: "c")),
            constraint: field(UInt8(ascii: "n")))
    }

    private static func connectionMessage(_ conn: OpaquePointer, conninfo: String) -> String {
        let lines = String(cString: PQerrorMessage(conn)).split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let text = lines.filter { !$0.isEmpty }.joined(separator: "; ")
        return redactingPassword(in: text.isEmpty ? "could not connect to PostgreSQL" : text, conninfo: conninfo)
    }

    /// The value libpq settled on for `keyword` (from the conninfo, a variable or its default).
    private static func option(_ conn: OpaquePointer, _ keyword: String) -> String? {
        guard let options = PQconninfo(conn) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let name = option.pointee.keyword {
            if String(cString: name) == keyword { return option.pointee.val.map { String(cString: $0) } }
            option += 1
        }
        return nil
    }

    static func firstLine(_ text: String) -> String {
        String(text.split(separator: "\n").first ?? "").trimmingCharacters(in: .whitespaces)
    }
}

/// Removes a password that a malformed conninfo might echo back in libpq's error text.
func redactingPassword(in message: String, conninfo: String) -> String {
    var secrets: [String] = []
    if let at = conninfo.range(of: "@"), let scheme = conninfo.range(of: "://"), scheme.upperBound < at.lowerBound {
        let userinfo = conninfo[scheme.upperBound..<at.lowerBound]
        if let colon = userinfo.firstIndex(of: ":") { secrets.append(String(userinfo[userinfo.index(after: colon)...])) }
    }
    if let range = conninfo.range(of: "password=") {
        let rest = conninfo[range.upperBound...]
        secrets.append(String(rest.prefix { $0 != " " && $0 != "&" }))
    }
    var redacted = message
    for secret in secrets where secret.count >= 1 {
        redacted = redacted.replacingOccurrences(of: secret, with: "***")
    }
    return redacted
}

/// A NOTIFY received on a `LISTEN`ing connection.
public struct PGNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    /// The server process that sent it.
    public let processID: Int32
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// libpq's parameter arrays for `parameters`, alive while `body` runs (`PQsendQueryParams` copies them
/// into its output buffer). Text is NUL-terminated (`strdup`); a binary value is copied with its length.
/// When every parameter is untyped text, types, lengths and formats are passed as NULL, the call it
/// always was.
private func withParameterArrays<R>(
    _ parameters: [PGParameter],
    _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    var copies: [UnsafeMutablePointer<CChar>?] = []
    copies.reserveCapacity(parameters.count)
    defer { copies.forEach { free($0) } }
    var lengths: [Int32] = [], formats: [Int32] = [], types: [Oid] = []
    let plain = parameters.allSatisfy(\.isUntypedText)
    if !plain {
        lengths.reserveCapacity(parameters.count)
        formats.reserveCapacity(parameters.count)
        types.reserveCapacity(parameters.count)
    }
    for parameter in parameters {
        switch parameter.value {
        case .null:
            copies.append(nil)
            lengths.append(0)
            formats.append(0)
        case .text(let text):
            copies.append(strdup(text))
            lengths.append(0)
            formats.append(0)
        case .binary(let bytes):
            let copy = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: CChar.self)
            bytes.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { memcpy(copy, base, bytes.count) }
            }
            copies.append(copy)
            lengths.append(Int32(bytes.count))
            formats.append(1)
        }
        types.append(parameter.type)
    }
    var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { values in
        if plain { return body(nil, values.baseAddress!, nil, nil) }
        return types.withUnsafeBufferPointer { types in
            lengths.withUnsafeBufferPointer { lengths in
                formats.withUnsafeBufferPointer { formats in
                    body(types.baseAddress, values.baseAddress!, lengths.baseAddress, formats.baseAddress)
                }
            }
        }
    }
}
