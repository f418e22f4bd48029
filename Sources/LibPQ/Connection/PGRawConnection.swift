import CLibPQ
import Foundation

/// The libpq connection handle and every blocking call made on it.
///
/// Deliberately not `Sendable`: it is owned by one ``PGSession`` actor, which runs on a
/// ``DedicatedThreadExecutor``, so libpq's "one thread at a time per connection" rule holds.
final class PGRawConnection {
    private var handle: OpaquePointer?
    private let conninfo: String
    private let applicationName: String

    init(conninfo: String, applicationName: String) {
        self.conninfo = conninfo
        self.applicationName = applicationName
    }

    deinit { close() }

    var isOpen: Bool { handle != nil && PQstatus(handle) == CONNECTION_OK }

    /// Opens the connection (libpq falls back to the `PG*` environment variables for anything the
    /// conninfo leaves out) and fixes the session settings the decoders rely on.
    func open() throws(PGError) {
        close()
        let keywords = ["dbname", "application_name", "connect_timeout"]
        let values = [conninfo, applicationName, ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] ?? "10"]
        let conn: OpaquePointer? = withCStringArray(keywords) { k in
            withCStringArray(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let conn else { throw PGError(.connection, "out of memory while connecting") }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = Self.connectionMessage(conn, conninfo: conninfo)
            PQfinish(conn)
            throw PGError(.connection, message)
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)  // NOTICEs are not printed to stderr
        handle = conn
        _ = try execute("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3", [])
    }

    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// Detects a connection the server has closed while it sat idle (restart, admin kill) and
    /// reconnects before it is used, so a pooled connection survives a server restart.
    func ensureOpen() throws(PGError) {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return try open() }
        // Something arriving on an idle connection is a notification, or the server's goodbye
        // (FATAL 57P01 on shutdown) followed by end of file: read until the socket is quiet.
        for _ in 0..<4 {
            var fd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, 0) > 0 else { return }
            if fd.revents & Int16(POLLHUP | POLLERR) != 0 || PQconsumeInput(handle) == 0
                || PQstatus(handle) != CONNECTION_OK
            {
                return try open()
            }
        }
    }

    /// Runs one statement with text-format parameters (`nil` is SQL NULL). `$n` placeholders only:
    /// values never become part of the SQL text.
    func execute(_ sql: String, _ parameters: [String?]) throws(PGError) -> PGResult {
        guard let handle else { throw PGError(.connection, "not connected") }
        let result: OpaquePointer?
        if parameters.isEmpty {
            result = PQexec(handle, sql)
        } else {
            result = withOptionalCStringArray(parameters) { values in
                PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
            }
        }
        return try consume(result)
    }

    /// Sends a batch of statements in libpq pipeline mode, one network round trip for all of
    /// them, run as one implicit transaction (an error aborts the rest).
    func executePipeline(_ statements: [(sql: String, parameters: [String?])]) throws(PGError) -> [PGResult] {
        guard let handle else { throw PGError(.connection, "not connected") }
        guard PQenterPipelineMode(handle) == 1 else { throw lastError("could not enter pipeline mode") }
        var firstError: PGError?
        var results: [PGResult] = []
        for statement in statements {
            let sent = withOptionalCStringArray(statement.parameters) { values in
                PQsendQueryParams(handle, statement.sql, Int32(statement.parameters.count), nil, values, nil, nil, 0)
            }
            if sent != 1 {
                firstError = lastError("could not send a pipelined statement")
                break
            }
        }
        if firstError == nil && PQpipelineSync(handle) != 1 { firstError = lastError("pipeline sync failed") }
        // Read every statement's results (each ends with NULL), then the sync marker, even after an
        // error, so that the connection is left usable.
        if firstError == nil {
            for _ in statements {
                while let res = PQgetResult(handle) {
                    if PQresultStatus(res) == PGRES_PIPELINE_ABORTED {
                        PQclear(res)
                        continue
                    }
                    do {
                        results.append(try consume(res))
                    } catch {
                        if firstError == nil { firstError = error }
                    }
                }
                if PQstatus(handle) != CONNECTION_OK { break }
            }
            if PQstatus(handle) == CONNECTION_OK, let sync = PQgetResult(handle) { PQclear(sync) }
        }
        PQexitPipelineMode(handle)
        if let firstError { throw firstError }
        return results
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

    /// Converts a libpq result into a ``PGResult`` (copying every value) or a ``PGError``, and
    /// always frees it.
    private func consume(_ result: OpaquePointer?) throws(PGError) -> PGResult {
        guard let result else { throw lastError("no result from the server") }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE, PGRES_EMPTY_QUERY:
            return PGResult(copying: result)
        default:
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

private func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
