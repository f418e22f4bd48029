import FlexChargeSandbox
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The same seed gives the same replies: the sandbox's SplitMix64 generator.
typealias SplitMix64 = SeededGenerator

extension SeededGenerator {
    mutating func chance(_ percent: Double) -> Bool { Double.random(in: 0..<100, using: &self) < percent }
}

/// A fake FlexCharge on loopback that answers every request with a random, often malformed, reply written
/// byte by byte: random status codes (1xx, 3xx, 999), random, huge and repeated headers (every form of
/// `Retry-After`), truncated JSON, wrong JSON types, huge numbers, deep nesting, invalid UTF-8, empty and large
/// bodies, broken framing, slow answers, hangs, connection resets.
///
/// Replies come from one generator seeded with `seed`; ``reseed(_:)`` restarts it (one call at a time gives a
/// replayable sequence).
final class FuzzFlexChargeServer: Sendable {
    /// One thing the server does on a connection.
    enum Step: Sendable {
        case write([UInt8])
        case pause(milliseconds: Int64)
        case close
        case reset
        case hang
    }

    /// A reply and a short label (for failure messages).
    struct Reply: Sendable {
        var label: String
        var steps: [Step]
        /// A well-formed answer with this status and a body of the expected shape: the client must classify it
        /// exactly (nil for any reply that breaks a rule).
        var cleanStatus: Int?
    }

    /// A reply sent since the last ``reseed(_:)``, with the route it answered.
    struct Sent: Sendable {
        var route: FuzzReplies.Route
        var label: String
        var cleanStatus: Int?
    }

    private struct State {
        var rng: SplitMix64
        var sent: [Sent] = []
        var replies = 0
        var labels: [String: Int] = [:]
        var tokenFuzzPercent: Double = 15
    }

    let channel: any Channel
    private let state: Mutex<State>
    var port: Int { channel.localAddress?.port ?? 0 }
    var baseURL: String { "http://127.0.0.1:\(port)/v1/" }

    private init(channel: any Channel, seed: UInt64) {
        self.channel = channel
        self.state = Mutex(State(rng: SplitMix64(seed: seed)))
    }

    static func start(seed: UInt64) async throws -> FuzzFlexChargeServer {
        let box = ServerBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = FuzzFlexChargeServer(channel: channel, seed: seed)
        box.server.withLock { $0 = server }
        return server
    }

    func stop() async {
        try? await channel.close()
    }

    /// Restarts the generator.
    func reseed(_ seed: UInt64) {
        state.withLock {
            $0.rng = SplitMix64(seed: seed)
            $0.sent.removeAll()
        }
    }

    /// The replies sent since the last ``reseed(_:)``, in order.
    var sent: [Sent] { state.withLock { $0.sent } }

    /// How many replies of each label were sent.
    var labels: [String: Int] { state.withLock { $0.labels } }
    var replyCount: Int { state.withLock { $0.replies } }

    /// The reply to one request.
    func reply(method: String, target: String) -> Reply {
        state.withLock { state in
            let reply = FuzzReplies.make(method: method, target: target, tokenFuzzPercent: state.tokenFuzzPercent, rng: &state.rng)
            state.replies += 1
            state.labels[reply.label, default: 0] += 1
            if state.sent.count < 16 { state.sent.append(Sent(route: .init(target: target), label: reply.label, cleanStatus: reply.cleanStatus)) }
            return reply
        }
    }
}

/// Lets the connection handlers reach the server, which exists only once the bind returned.
private final class ServerBox: Sendable {
    let server = Mutex<FuzzFlexChargeServer?>(nil)
}

/// Reads requests (head and Content-Length body) and plays the server's replies.
private final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let server: ServerBox
    var buffer: [UInt8] = []
    var busy = false
    var done = false

    init(server: ServerBox) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        if buffer.count > 4 << 20 { buffer.removeAll() }
        serveNext(context)
    }

    private func serveNext(_ context: ChannelHandlerContext) {
        guard !busy, !done, let (method, target, length) = parseRequest() else { return }
        buffer.removeFirst(length)
        guard let server = server.server.withLock({ $0 }) else { return }
        busy = true
        play(server.reply(method: method, target: target).steps[...], context)
    }

    /// The request at the start of the buffer, when it is complete: method, target, total length.
    private func parseRequest() -> (String, String, Int)? {
        guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        guard requestLine.count >= 2 else { return nil }
        var contentLength = 0
        for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
            contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let total = end.upperBound + contentLength
        guard buffer.count >= total else { return nil }
        return (String(requestLine[0]), String(requestLine[1]), total)
    }

    private func play(_ steps: ArraySlice<FuzzFlexChargeServer.Step>, _ context: ChannelHandlerContext) {
        guard let step = steps.first else {
            busy = false
            serveNext(context)
            return
        }
        let rest = steps.dropFirst()
        switch step {
        case .write(let bytes):
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
            play(rest, context)
        case .pause(let milliseconds):
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) { [self] in
                play(rest, context)
            }
        case .close:
            done = true
            context.close(promise: nil)
        case .reset:
            done = true
            if let provider = context.channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .hang:
            done = true  // never answers; the client's deadline ends it
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The reply generator.
enum FuzzReplies {
    static func make(method: String, target: String, tokenFuzzPercent: Double, rng: inout SplitMix64) -> FuzzFlexChargeServer.Reply {
        let route = Route(target: target)
        if route == .token, !rng.chance(tokenFuzzPercent) {
            let body = #"{"accessToken":"tok-\#(rng.next() % 1000)","expires":\#(Int64(Date().timeIntervalSince1970 * 1000) + 600_000)}"#
            return .init(label: "token ok", steps: [.write(response(status: 200, headers: [], body: Array(body.utf8), close: false))],
                         cleanStatus: 200)
        }
        // What goes wrong at the connection level, if anything.
        let roll = Double.random(in: 0..<100, using: &rng)
        switch roll {
        case ..<1.5: return .init(label: "reset before reply", steps: [.reset])
        case ..<3: return .init(label: "close without reply", steps: [.close])
        case ..<3.2: return .init(label: "hang", steps: [.hang])
        case ..<4.5:
            let junk: [[UInt8]] = [Array("HTTP/1.1 abc\r\n\r\n".utf8), Array("HTTP/9.9 200 OK\r\n\r\n{}".utf8), [0, 0, 0, 0xFF, 0xFE],
                                   Array("SSH-2.0-OpenSSH\r\n".utf8), Array("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}".utf8),
                                   Array("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}".utf8),
                                   Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n".utf8)]
            return .init(label: "garbage head", steps: [.write(junk[Int(rng.next() % UInt64(junk.count))]), .close])
        default: break
        }
        let status = pickStatus(&rng)
        var headers = pickHeaders(status: status, rng: &rng)
        var (body, clean) = pickBody(route: route, status: status, target: target, rng: &rng)
        var label = "\(status) \(clean ? "clean" : "mutated")"
        if rng.chance(3) {
            // 1xx informational head first, then (mostly) the real reply.
            let informational = Array("HTTP/1.1 \(100 + rng.next() % 4) Info\r\n\r\n".utf8)
            if rng.chance(50) {
                return .init(label: "1xx only", steps: [.write(informational), .close])
            }
            headers.append(("X-After", "informational"))
            let final = response(status: status, headers: headers, body: body, close: true)
            return .init(label: "1xx then \(label)", steps: [.write(informational), .write(final), .close])
        }
        let framing = Double.random(in: 0..<100, using: &rng)
        var steps: [FuzzFlexChargeServer.Step]
        var wellFramed = false
        switch framing {
        case ..<6:
            label += " chunked"
            steps = [.write(chunked(status: status, headers: headers, body: body, valid: true, rng: &rng)), .close]
            wellFramed = true
        case ..<9:
            label += " bad chunks"
            steps = [.write(chunked(status: status, headers: headers, body: body, valid: false, rng: &rng)), .close]
        case ..<13:
            label += " cut short"
            let full = response(status: status, headers: headers, body: body + Array(repeating: UInt8(ascii: " "), count: 50), close: false,
                                contentLength: body.count + 50)
            steps = [.write(Array(full.dropLast(50 + Int(rng.next() % UInt64(max(1, body.count)))))), .close]
        case ..<16:
            label += " until close"
            steps = [.write(response(status: status, headers: headers, body: body, close: true, contentLength: nil)), .close]
            wellFramed = false  // async-http-client reports a body ended by close as cut off
        case ..<18:
            label += " trailing garbage"
            steps = [.write(response(status: status, headers: headers, body: body, close: false) + Array("HTTP/1.1 500 X\r\n\r\n\u{0}".utf8)),
                     .close]
            wellFramed = false
        case ..<20:
            label += " reset mid-body"
            let full = response(status: status, headers: headers, body: body + Array(repeating: UInt8(ascii: " "), count: 100), close: false)
            steps = [.write(Array(full.prefix(full.count - 60))), .reset]
        case ..<23:
            label += " slow"
            let full = response(status: status, headers: headers, body: body, close: rng.chance(50))
            steps = []
            let parts = 2 + Int(rng.next() % 3)
            let size = max(1, full.count / parts + 1)
            var offset = 0
            while offset < full.count {
                steps.append(.write(Array(full[offset..<min(full.count, offset + size)])))
                steps.append(.pause(milliseconds: Int64(10 + rng.next() % 40)))
                offset += size
            }
            wellFramed = false  // timing-dependent under load
        default:
            let close = rng.chance(50)
            steps = [.write(response(status: status, headers: headers, body: body, close: close))]
            if close { steps.append(.close) }
            wellFramed = true
        }
        if !wellFramed { clean = false }
        // A Content-Length above the client's limit, or a 1xx/204/304 whose body the parser must drop, is not "clean".
        if status < 200 || status == 204 || status == 304 || body.count > 1 << 20 { clean = false }
        if headers.contains(where: { $0.1.utf8.count > 8 * 1024 || $0.1.utf8.contains { $0 < 0x20 || $0 > 0x7E } }) || headers.count > 50 {
            clean = false  // a parser may refuse these: any classification is right, only a crash is wrong
        }
        return .init(label: label, steps: steps, cleanStatus: clean ? status : nil)
    }

    enum Route: Equatable, Sendable {
        case token, transmit, evaluate, tokenize, outcome, order, orders, cancel, refund, capture, other

        init(target: String) {
            let path = target.split(separator: "?").first.map(String.init) ?? target
            switch true {
            case path.hasSuffix("/oauth2/token"): self = .token
            case path.hasSuffix("/transmit"): self = .transmit
            case path.hasSuffix("/evaluate"): self = .evaluate
            case path.hasSuffix("/tokenize"): self = .tokenize
            case path.hasSuffix("/outcome"): self = .outcome
            case path.hasSuffix("/cancel") || path.hasSuffix("/external-cancel"): self = .cancel
            case path.hasSuffix("/refund"): self = .refund
            case path.hasSuffix("/capture"): self = .capture
            case path.hasSuffix("/orders"): self = .orders
            case path.contains("/orders/"): self = .order
            default: self = .other
            }
        }
    }

    static func pickStatus(_ rng: inout SplitMix64) -> Int {
        let roll = Double.random(in: 0..<100, using: &rng)
        func one(_ values: [Int]) -> Int { values[Int(rng.next() % UInt64(values.count))] }
        switch roll {
        case ..<45: return 200
        case ..<49: return one([201, 202, 204, 299])
        case ..<62: return one([400, 401, 403, 404, 405, 409, 410, 422, 451])
        case ..<72: return 429
        case ..<84: return one([500, 502, 503, 504, 599])
        case ..<89: return one([300, 301, 302, 304, 307, 308])
        case ..<92: return 999
        default: return 100 + Int(rng.next() % 900)
        }
    }

    static let retryAfterValues = [
        "99999999999999", "99999999999999", "99999999999999",  // the value that crashed the worker, weighted "99999999999999999999999999", "-5", "NaN", "nan", "inf", "-inf", "1e308", "-0", "0", "1", "3", "1.5",
        "", " ", "soon", "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
        "Mon, 99 Foo 2026 99:99:99 GMT", "12\u{0}34", "5, 6", String(repeating: "9", count: 4000), "\u{FEFF}7",
        "9223372036854775807", "9223372036854775808", "18446744073709551616", "0x10", "+5",
    ]

    static func pickHeaders(status: Int, rng: inout SplitMix64) -> [(String, String)] {
        var headers: [(String, String)] = []
        if rng.chance(85) { headers.append(("Content-Type", rng.chance(90) ? "application/json; charset=utf-8" : "text/html")) }
        if status == 429 || status == 503 ? rng.chance(80) : rng.chance(8) {
            let count = rng.chance(15) ? 2 + Int(rng.next() % 3) : 1
            for _ in 0..<count {
                headers.append(("Retry-After", retryAfterValues[Int(rng.next() % UInt64(retryAfterValues.count))]))
            }
        }
        if rng.chance(3) {
            for index in 0..<(20 + Int(rng.next() % 200)) { headers.append(("X-Junk-\(index)", String(repeating: "j", count: Int(rng.next() % 100)))) }
        }
        if rng.chance(2) { headers.append(("X-Huge", String(repeating: "h", count: 20_000 + Int(rng.next() % 60_000)))) }
        if rng.chance(2) { headers.append(("Set-Cookie", "AWSALB=\(rng.next()); Path=/")) }
        return headers
    }

    /// A body for the route and status, and whether it is the expected shape.
    static func pickBody(route: Route, status: Int, target: String, rng: inout SplitMix64) -> ([UInt8], Bool) {
        let roll = Double.random(in: 0..<100, using: &rng)
        switch roll {
        case ..<55:
            return (Array(validBody(route: route, status: status, target: target, rng: &rng).utf8), true)
        case ..<72:
            return (Array(mutatedBody(route: route, status: status, target: target, rng: &rng).utf8), false)
        case ..<76:
            let valid = Array(validBody(route: route, status: status, target: target, rng: &rng).utf8)
            return (Array(valid.prefix(Int(rng.next() % UInt64(max(1, valid.count))))), false)  // truncated JSON
        case ..<79: return ([], false)
        case ..<82:
            let depth = 1000 + Int(rng.next() % 200_000)
            let open: UInt8 = rng.chance(50) ? UInt8(ascii: "[") : UInt8(ascii: "{")
            if open == UInt8(ascii: "[") {
                return (Array(repeating: open, count: depth) + Array(repeating: UInt8(ascii: "]"), count: rng.chance(50) ? depth : 0), false)
            }
            return (Array(String(repeating: #"{"a":"#, count: depth).utf8) + [UInt8(ascii: "1")] + Array(repeating: UInt8(ascii: "}"), count: depth), false)
        case ..<85:
            var bytes = Array(validBody(route: route, status: status, target: target, rng: &rng).utf8)
            for _ in 0..<(1 + rng.next() % 5) {
                let index = Int(rng.next() % UInt64(max(1, bytes.count)))
                if index < bytes.count { bytes[index] = [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0x00][Int(rng.next() % 6)] }
            }
            return (bytes, false)  // invalid UTF-8
        case ..<87:
            return (Array(repeating: UInt8(ascii: " "), count: (1 << 20) + Int(rng.next() % (1 << 20))) + Array("{}".utf8), false)  // over the cap
        case ..<89:
            let big = String(repeating: "x", count: 200_000 + Int(rng.next() % 600_000))
            return (Array(#"{"title":"\#(big)","status":"\#(big)","orderSessionKey":"\#(big)","transmitId":"\#(big)"}"#.utf8), false)
        case ..<92:
            let odd = ["null", "[]", "\"text\"", "123", "true", "{}", "{\"items\":null}", "<html>502 Bad Gateway</html>", "\u{FEFF}{}"]
            return (Array(odd[Int(rng.next() % UInt64(odd.count))].utf8), false)
        default:
            return ((0..<Int(rng.next() % 4096)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, false)
        }
    }

    static func queryValue(_ name: String, in target: String) -> String? {
        guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first == Substring(name), parts.count == 2 { return String(parts[1]).removingPercentEncoding }
        }
        return nil
    }

    static func uuid(_ rng: inout SplitMix64) -> String {
        let a = rng.next(), b = rng.next()
        return String(format: "%08x-%04x-4%03x-8%03x-%012llx", UInt32(truncatingIfNeeded: a), UInt16(truncatingIfNeeded: a >> 32),
                      UInt16(truncatingIfNeeded: a >> 48) & 0xFFF, UInt16(truncatingIfNeeded: b) & 0xFFF, b >> 16)
    }

    static func validBody(route: Route, status: Int, target: String, rng: inout SplitMix64) -> String {
        if !(200..<300).contains(status) {
            switch rng.next() % 4 {
            case 0: return #"{"title":"One or more validation errors occurred.","errors":{"OrderId":["Merchant's orderId is required"],"Amount":["must be positive","too large"]}}"#
            case 1: return #"{"OrderId":["required"],"traceId":"00-abc"}"#
            case 2: return #"{"success":false,"status":"FAILED","errors":[{"item1":"idempotency key reused with a different body","item2":"x"}]}"#
            default: return #"{"title":"Too Many Requests","status":\#(status)}"#
            }
        }
        let statuses = ["APPROVED", "DECLINED", "SUBMITTED", "CHALLENGE", "CAPTUREREQUIRED"]
        let orderStatuses = ["COMPLETED", "CANCELLED", "CAPTUREREQUIRED", "PROCESSING", "DRAFT", "RETURNED", "ONHOLD", "PROBLEM"]
        let expiries = ["2030-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2026-12-01T10:00:00.123Z", "9999-12-31T23:59:59Z", "2026-12-01T10:00:00"]
        switch route {
        case .token: return #"{"accessToken":"tok-\#(rng.next() % 100)","expires":\#(Int64(Date().timeIntervalSince1970 * 1000) + 600_000)}"#
        case .transmit: return #"{"transmitId":"\#(uuid(&rng))","result":"success","success":true}"#
        case .evaluate:
            let key = uuid(&rng)
            return #"{"orderSessionKey":"\#(key)","orderId":"\#(key)","status":"\#(statuses[Int(rng.next() % 5)])","success":true,"result":"ok"}"#
        case .tokenize: return #"{"transaction":{"succeeded":true,"payment_method":{"token":"tk_\#(rng.next() % 10000)","last_four_digits":"1111","first_six_digits":"411111"}},"success":true}"#
        case .outcome: return #"{"status":"\#(statuses[Int(rng.next() % 5)])","confirmationId":"C-1","success":true}"#
        case .order:
            return #"{"id":"\#(uuid(&rng))","status":7,"statusName":"\#(orderStatuses[Int(rng.next() % 8)])","amount":1500,"expiryDate":"\#(expiries[Int(rng.next() % 5)])"}"#
        case .orders:
            let reference = queryValue("query", in: target) ?? "unknown"
            let escaped = String(decoding: (try? JSONEncoder().encode(reference)) ?? Data("\"x\"".utf8), as: UTF8.self)
            let count = Int(rng.next() % 3)
            let items = (0..<count).map { _ in
                #"{"id":"\#(uuid(&rng))","statusName":"\#(orderStatuses[Int(rng.next() % 8)])","referenceNumber":\#(escaped)}"#
            }
            return #"{"items":[\#(items.joined(separator: ","))],"pageNumber":1,"pageSize":100,"hasNextPage":\#(rng.chance(10))}"#
        case .refund:
            return rng.chance(80) ? #"{"status":"SUCCESS","success":true,"transactionId":"r-1"}"#
                : #"{"status":"FAILED","success":false,"responseCode":"2001","responseMessage":"amount above refundable"}"#
        case .cancel, .capture, .other: return #"{"status":"SUCCESS","success":true}"#
        }
    }

    static let weirdValues = [
        "1e308", "-1e308", "-0", "99999999999999999999", "-99999999999999999999", "1.7976931348623157e309", "9223372036854775808",
        "0.000000000000000000000001", "null", "true", "[]", "{}", "[1,[2,[3]]]", #""""#, #""\u0000\n2026-01-01 critical forged\r""#,
        #""\ud800""#, #""\u001b[31mred""#, "\"" + String(repeating: "s", count: 100_000) + "\"", #""APPROVED\nINFO forged""#, "3.5", "-1",
    ]

    static let fields = ["accessToken", "expires", "transmitId", "orderSessionKey", "orderId", "status", "success", "result",
                         "items", "id", "statusName", "referenceNumber", "hasNextPage", "expiryDate", "token", "transaction",
                         "responseMessage", "responseCode", "title", "errors", "amount", "pageNumber", "last_four_digits", "TransmitId"]

    /// The valid body with one to three fields replaced by odd values (or added twice).
    static func mutatedBody(route: Route, status: Int, target: String, rng: inout SplitMix64) -> String {
        var body = validBody(route: route, status: status, target: target, rng: &rng)
        for _ in 0..<(1 + rng.next() % 3) {
            let field = fields[Int(rng.next() % UInt64(fields.count))]
            let value = weirdValues[Int(rng.next() % UInt64(weirdValues.count))]
            if let range = body.range(of: "\"\(field)\":") {
                // Replace the value that follows (up to the next , or } at the same level, roughly).
                var end = range.upperBound
                var depth = 0
                var inString = false
                while end < body.endIndex {
                    let c = body[end]
                    if c == "\"" { inString.toggle() }
                    if !inString {
                        if c == "{" || c == "[" { depth += 1 }
                        if c == "}" || c == "]" { if depth == 0 { break }; depth -= 1 }
                        if c == "," && depth == 0 { break }
                    }
                    end = body.index(after: end)
                }
                body.replaceSubrange(range.upperBound..<end, with: value)
            } else if body.hasPrefix("{") {
                body.insert(contentsOf: "\"\(field)\":\(value),", at: body.index(after: body.startIndex))
            }
        }
        if rng.chance(10), body.hasPrefix("{") {
            // Duplicate keys.
            body.insert(contentsOf: #""status":"DECLINED","status":5,"#, at: body.index(after: body.startIndex))
        }
        return body
    }

    static func response(status: Int, headers: [(String, String)], body: [UInt8], close: Bool, contentLength: Int?? = .some(nil)) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Fuzz")\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        switch contentLength {
        case .none: break  // read until close
        case .some(.none): head += "Content-Length: \(body.count)\r\n"
        case .some(.some(let length)): head += "Content-Length: \(length)\r\n"
        }
        head += close ? "Connection: close\r\n" : "Connection: keep-alive\r\n"
        return Array((head + "\r\n").utf8) + body
    }

    static func chunked(status: Int, headers: [(String, String)], body: [UInt8], valid: Bool, rng: inout SplitMix64) -> [UInt8] {
        var head = "HTTP/1.1 \(status) Fuzz\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        var offset = 0
        while offset < body.count {
            let size = min(body.count - offset, 1 + Int(rng.next() % 4096))
            let sizeText = valid ? String(size, radix: 16) : (rng.chance(50) ? "zz" : String(size + 7, radix: 16))
            bytes += Array("\(sizeText)\r\n".utf8) + body[offset..<offset + size] + Array("\r\n".utf8)
            offset += size
        }
        bytes += Array("0\r\n\r\n".utf8)
        return bytes
    }
}
