import NIOCore
import NIOHTTP1

/// An incremental, strict parser of HTTP/1.1 responses: one response per request, read from the bytes of one
/// connection as they arrive.
///
/// It accepts what a real server sends (`Content-Length` and chunked bodies, `Connection: close`, 1xx heads before
/// the final one, 204/304 without a body) and refuses everything else as malformed: another HTTP version, a head
/// without CRLF line ends, folded or control-character header values, a length that is not a plain decimal, two
/// lengths that differ, a length together with chunked, a transfer coding other than chunked, bad chunk framing.
/// A body that only the end of the connection would end (neither length nor chunked) is refused as cut off: the
/// client could not tell a complete one from a truncated one. Bodies longer than ``maximumBodyBytes`` stop the
/// parse (``Outcome/tooLarge``) before they are read.
struct HTTP1ResponseParser {
    /// What one call to ``parse(_:)`` found.
    enum Outcome {
        /// The response is not complete yet.
        case needMore
        /// A final response, complete. Bytes after it stay in the buffer.
        case complete(HTTP1Response)
        /// The bytes are not an acceptable HTTP/1.1 response (a fixed reason, never a byte of the input).
        case malformed(String)
        /// The final head announced, or the body reached, more than ``maximumBodyBytes``.
        case tooLarge
    }

    /// The largest response head (status line and headers) read, in bytes.
    static let maximumHeadBytes = 80 * 1024
    /// The most header fields one head may carry.
    static let maximumHeaderCount = 100
    /// The longest chunk-size line (size and extensions), in bytes.
    static let maximumChunkLineBytes = 1024

    let maximumBodyBytes: Int

    /// The final head's status, once it has been read (1xx heads are skipped and leave it `nil`).
    private(set) var status: Int?

    private enum State {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case trailers
    }

    private var state = State.head
    /// The final head's header lines (validated), and where they start in the head being parsed.
    private var fields = ByteBuffer()
    private var fieldsStart = 0
    private var body: [UInt8] = []
    private var keepAlive = true

    init(maximumBodyBytes: Int) {
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Reads as much of the response as `buffer` holds, consuming what it reads.
    mutating func parse(_ buffer: inout ByteBuffer) -> Outcome {
        while true {
            switch state {
            case .head:
                switch readHead(&buffer) {
                case .needMore: return .needMore
                case .failed(let outcome): return outcome
                case .informational: continue
                case .read(let framing):
                    switch framing {
                    case .empty: return complete()
                    case .length(let length):
                        if length > maximumBodyBytes { return .tooLarge }
                        if length == 0 { return complete() }
                        body.reserveCapacity(length)
                        state = .body(remaining: length)
                    case .chunked:
                        state = .chunkSize
                    }
                }
            case .body(let remaining):
                let taken = min(remaining, buffer.readableBytes)
                if taken > 0 {
                    body.append(contentsOf: buffer.readableBytesView.prefix(taken))
                    buffer.moveReaderIndex(forwardBy: taken)
                }
                if taken == remaining { return complete() }
                state = .body(remaining: remaining - taken)
                return .needMore
            case .chunkSize:
                let line: [UInt8]
                switch Self.readLine(&buffer, limit: Self.maximumChunkLineBytes) {
                case .line(let read): line = read
                case .needMore: return .needMore
                case .tooLong, .bad: return .malformed("bad chunk size line")
                }
                guard let size = Self.chunkSize(line) else { return .malformed("bad chunk size") }
                if size == 0 {
                    state = .trailers
                } else {
                    if size > maximumBodyBytes - body.count { return .tooLarge }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let taken = min(remaining, buffer.readableBytes)
                if taken > 0 {
                    body.append(contentsOf: buffer.readableBytesView.prefix(taken))
                    buffer.moveReaderIndex(forwardBy: taken)
                }
                if taken < remaining {
                    state = .chunkData(remaining: remaining - taken)
                    return .needMore
                }
                state = .chunkEnd
            case .chunkEnd:
                guard buffer.readableBytes >= 2 else { return .needMore }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { return .malformed("bad chunk end") }
                state = .chunkSize
            case .trailers:
                // Trailer fields are read past and dropped; an empty line ends the response.
                switch Self.readLine(&buffer, limit: Self.maximumHeadBytes) {
                case .line(let line): if line.isEmpty { return complete() }
                case .needMore: return .needMore
                case .tooLong, .bad: return .malformed("bad trailer")
                }
            }
        }
    }

    /// Ready for the next response on the same connection.
    mutating func reset() {
        state = .head
        status = nil
        fields = ByteBuffer()
        body = []
        keepAlive = true
    }

    private mutating func complete() -> Outcome {
        let response = HTTP1Response(status: status ?? 0, head: HTTP1Head(fields: fields), body: body, keepAlive: keepAlive)
        state = .head
        fields = ByteBuffer()
        body = []
        return .complete(response)
    }

    // MARK: Head

    private enum Framing { case empty, length(Int), chunked }
    private enum HeadResult { case needMore, failed(Outcome), informational, read(Framing) }

    private mutating func readHead(_ buffer: inout ByteBuffer) -> HeadResult {
        let view = buffer.readableBytesView
        guard let end = Self.endOfHead(view) else {
            return view.count > Self.maximumHeadBytes ? .failed(.malformed("response head too long")) : .needMore
        }
        if end > Self.maximumHeadBytes { return .failed(.malformed("response head too long")) }
        let result = view.withUnsafeBytes { raw in
            parseHead(UnsafeRawBufferPointer(rebasing: raw[..<(end - 4)]))
        }
        if case .read = result {
            // The header lines, shared with the read buffer, not copied.
            fields = buffer.getSlice(at: buffer.readerIndex + fieldsStart, length: end - 4 - fieldsStart) ?? ByteBuffer()
        }
        buffer.moveReaderIndex(forwardBy: end)
        return result
    }

    /// The index just past the first CRLF CRLF, if the view holds one.
    private static func endOfHead(_ view: ByteBufferView) -> Int? {
        view.withUnsafeBytes { raw -> Int? in
            let count = raw.count
            guard count >= 4 else { return nil }
            var index = 3
            while index < count {
                let byte = raw[index]
                if byte == 0x0A {
                    if raw[index - 1] == 0x0D && raw[index - 2] == 0x0A && raw[index - 3] == 0x0D { return index + 1 }
                    index += 1
                } else if byte == 0x0D {
                    index += 1
                } else {
                    // No CR or LF here, so no terminator can end within the next three bytes.
                    index += 4
                }
            }
            return nil
        }
    }

    private mutating func parseHead(_ head: UnsafeRawBufferPointer) -> HeadResult {
        // Status line: HTTP/1.x SP 3DIGIT SP reason (the reason may be empty, the space before it is then optional).
        var lines = Lines(head)
        guard let statusLine = lines.next() else { return .failed(.malformed("empty response head")) }
        guard statusLine.count >= 12,
              statusLine[0] == UInt8(ascii: "H"), statusLine[1] == UInt8(ascii: "T"), statusLine[2] == UInt8(ascii: "T"),
              statusLine[3] == UInt8(ascii: "P"), statusLine[4] == UInt8(ascii: "/"), statusLine[5] == UInt8(ascii: "1"),
              statusLine[6] == UInt8(ascii: "."), statusLine[7] == UInt8(ascii: "1") || statusLine[7] == UInt8(ascii: "0"),
              statusLine[8] == UInt8(ascii: " ")
        else { return .failed(.malformed("not an HTTP/1.1 status line")) }
        let http10 = statusLine[7] == UInt8(ascii: "0")
        fieldsStart = min(lines.position, head.count)
        var code = 0
        for index in 9..<12 {
            let digit = statusLine[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { return .failed(.malformed("bad status code")) }
            code = code * 10 + Int(digit)
        }
        guard code >= 100, statusLine.count == 12 || statusLine[12] == UInt8(ascii: " ") else {
            return .failed(.malformed("bad status code"))
        }
        for byte in statusLine.dropFirst(12) where (byte < 0x20 && byte != 0x09) || byte == 0x7F {
            return .failed(.malformed("bad reason phrase"))
        }

        var contentLength: Int?
        var chunked = false
        var close = http10
        var count = 0
        while let line = lines.next() {
            count += 1
            guard count <= Self.maximumHeaderCount else { return .failed(.malformed("too many header fields")) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                return .failed(.malformed("bad header field"))
            }
            let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
            for byte in name where !HTTP1Target.isTokenByte(byte) { return .failed(.malformed("bad header name")) }
            var valueStart = colon + 1
            var valueEnd = line.endIndex
            while valueStart < valueEnd && (line[valueStart] == 0x20 || line[valueStart] == 0x09) { valueStart += 1 }
            while valueEnd > valueStart && (line[valueEnd - 1] == 0x20 || line[valueEnd - 1] == 0x09) { valueEnd -= 1 }
            let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
            for byte in value where (byte < 0x20 && byte != 0x09) || byte == 0x7F { return .failed(.malformed("bad header value")) }
            if Self.equalsLowercased(name, "content-length") {
                guard let length = Self.decimal(value) else { return .failed(.malformed("bad Content-Length")) }
                if let contentLength, contentLength != length { return .failed(.malformed("conflicting Content-Length")) }
                contentLength = length
            } else if Self.equalsLowercased(name, "transfer-encoding") {
                guard Self.equalsLowercased(value, "chunked"), !chunked else { return .failed(.malformed("unsupported Transfer-Encoding")) }
                chunked = true
            } else if Self.equalsLowercased(name, "connection") {
                if Self.containsToken(value, "close") { close = true }
                if http10 && Self.containsToken(value, "keep-alive") { close = false }
            }
        }
        if chunked && contentLength != nil { return .failed(.malformed("Content-Length with chunked")) }
        if code < 200 {
            // Informational (100 Continue, 102, 103): skipped, the final head follows. 101 would switch protocols,
            // which this client never asks for.
            if code == 101 { return .failed(.malformed("unexpected protocol switch")) }
            return .informational
        }
        status = code
        keepAlive = !close
        if code == 204 || code == 304 {
            // No body, whatever the head says. A head that announces one (a length above 0, chunks) comes from a
            // server that may still send those bytes: they would arrive as the next call's answer, so the
            // connection ends here.
            if chunked || (contentLength ?? 0) > 0 { keepAlive = false }
            return .read(.empty)
        }
        if chunked { return .read(.chunked) }
        if let contentLength { return .read(.length(contentLength)) }
        return .failed(.malformed("response without Content-Length or chunked body"))
    }

    /// The CRLF-separated lines of a head (without its final CRLF CRLF). A bare CR or LF, or a folded line
    /// (one starting with a space or tab), yields an empty line, which both the status line and the header reader
    /// refuse, and ends the iteration.
    private struct Lines {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func next() -> Slice<UnsafeRawBufferPointer>? {
            guard position <= bytes.count else { return nil }
            let start = position
            var index = start
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x0D {
                    guard index + 1 < bytes.count, bytes[index + 1] == 0x0A else { return broken() }
                    position = index + 2
                    if position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x09 { return broken() }
                    return bytes[start..<index]
                }
                if byte == 0x0A { return broken() }
                index += 1
            }
            position = bytes.count + 1
            return bytes[start..<index]
        }

        private mutating func broken() -> Slice<UnsafeRawBufferPointer>? {
            position = bytes.count + 1
            return bytes[0..<0]
        }
    }

    // MARK: Bytes

    /// A chunk-size line: hex digits, optionally followed by `;` extensions (ignored) or whitespace before them.
    private static func chunkSize(_ line: [UInt8]) -> Int? {
        var size = 0
        var digits = 0
        var index = 0
        while index < line.count {
            let byte = line[index]
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            default: value = -1
            }
            if value < 0 { break }
            digits += 1
            guard digits <= 8 else { return nil }  // more than 4 GiB: no FlexCharge answer
            size = size * 16 + value
            index += 1
        }
        guard digits > 0 else { return nil }
        while index < line.count && (line[index] == 0x20 || line[index] == 0x09) { index += 1 }
        guard index == line.count || line[index] == UInt8(ascii: ";") else { return nil }
        for byte in line[index...] where (byte < 0x20 && byte != 0x09) || byte == 0x7F { return nil }
        return size
    }

    private enum Line { case line([UInt8]), needMore, tooLong, bad }

    /// The next CRLF-terminated line (without its CRLF), consumed. A bare LF is ``Line/bad``.
    private static func readLine(_ buffer: inout ByteBuffer, limit: Int) -> Line {
        let view = buffer.readableBytesView
        guard let lf = view.prefix(limit + 2).firstIndex(of: 0x0A) else {
            return view.count > limit + 2 ? .tooLong : .needMore
        }
        let length = lf - view.startIndex
        guard length >= 1, view[lf - 1] == 0x0D else { return .bad }
        let line = Array(view.prefix(length - 1))
        buffer.moveReaderIndex(forwardBy: length + 1)
        return .line(line)
    }

    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 15 else { return nil }
        var value = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// True when `bytes`, ASCII-lower-cased, equal `lowercase`.
    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count {
            var byte = bytes[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[index] { return false }
        }
        return true
    }

    /// True when the comma-separated list `bytes` holds `token` (case-insensitive).
    private static func containsToken(_ bytes: UnsafeRawBufferPointer, _ token: StaticString) -> Bool {
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
            var from = start, to = end
            while from < to && (bytes[from] == 0x20 || bytes[from] == 0x09) { from += 1 }
            while to > from && (bytes[to - 1] == 0x20 || bytes[to - 1] == 0x09) { to -= 1 }
            if equalsLowercased(UnsafeRawBufferPointer(rebasing: bytes[from..<to]), token) { return true }
            start = end + 1
        }
        return false
    }
}

/// A complete HTTP/1.1 response.
struct HTTP1Response: Sendable {
    var status: Int
    var head: HTTP1Head
    var body: [UInt8]
    /// False when the server said `Connection: close` (or spoke HTTP/1.0 without keep-alive).
    var keepAlive: Bool
}

/// The header fields of a response, kept as the validated bytes of its header lines and turned into
/// `HTTPHeaders` only when asked for (the worker reads none on a success: building them cost about as much as
/// parsing the whole response).
struct HTTP1Head: Sendable {
    /// `name: value` lines separated by CRLF (checked by ``HTTP1ResponseParser``).
    let fields: ByteBuffer

    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        fields.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count {
                var end = start
                while end < raw.count && raw[end] != 0x0D { end += 1 }
                if let colon = raw[start..<end].firstIndex(of: UInt8(ascii: ":")) {
                    var from = colon + 1, to = end
                    while from < to && (raw[from] == 0x20 || raw[from] == 0x09) { from += 1 }
                    while to > from && (raw[to - 1] == 0x20 || raw[to - 1] == 0x09) { to -= 1 }
                    headers.add(name: String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<colon]), as: UTF8.self),
                                value: String(decoding: UnsafeRawBufferPointer(rebasing: raw[from..<to]), as: UTF8.self))
                }
                start = end + 2
            }
        }
        return headers
    }
}
