import NIOCore
import NIOHTTP1

/// Where a request goes: scheme, host and port (one pool of kept-alive connections each).
struct HTTP1Endpoint: Sendable, Hashable {
    var tls: Bool
    var host: String
    var port: Int
}

/// An absolute `http` or `https` URL split into what the transport needs, checked once.
///
/// Refused (``init(url:)`` answers `nil`): another scheme, user information, an empty or unusual host, a port
/// outside 1...65535, and any byte in the path or query that HTTP/1.1 would have to escape (space, control
/// characters, non-ASCII). The fragment is dropped.
struct HTTP1Target: Sendable, Hashable {
    var endpoint: HTTP1Endpoint
    /// The `Host` header value: the host, and the port when it is not the scheme's default.
    var hostHeader: String
    /// The request target: path and query, starting with `/`.
    var pathAndQuery: String

    init?(url: String) {
        var utf8 = Substring(url).utf8[...]
        let tls: Bool
        if Self.dropPrefix(&utf8, "https://") {
            tls = true
        } else if Self.dropPrefix(&utf8, "http://") {
            tls = false
        } else {
            return nil
        }
        let authorityEnd = utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
            ?? utf8.endIndex
        let authority = utf8[..<authorityEnd]
        var rest = utf8[authorityEnd...]
        if let hash = rest.firstIndex(of: UInt8(ascii: "#")) { rest = rest[..<hash] }

        // host, [v6], host:port, [v6]:port
        var hostBytes: Substring.UTF8View.SubSequence
        var portBytes: Substring.UTF8View.SubSequence?
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostBytes = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { return nil }
                portBytes = after.dropFirst()
            }
            guard !hostBytes.isEmpty, hostBytes.allSatisfy({ Self.isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return nil }
        } else {
            if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
                hostBytes = authority[..<colon]
                portBytes = authority[authority.index(after: colon)...]
            } else {
                hostBytes = authority
            }
            guard !hostBytes.isEmpty, hostBytes.allSatisfy({ Self.isHostByte($0) }) else { return nil }
        }
        var port = tls ? 443 : 80
        if let portBytes {
            guard !portBytes.isEmpty, portBytes.count <= 5, portBytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            port = portBytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard (1...65_535).contains(port) else { return nil }
        }
        guard rest.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let host = String(Substring(hostBytes))
        endpoint = HTTP1Endpoint(tls: tls, host: host, port: port)
        let bracketed = authority.first == UInt8(ascii: "[") ? "[\(host)]" : host
        hostHeader = port == (tls ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
        pathAndQuery = rest.isEmpty ? "/" : (rest.first == UInt8(ascii: "?") ? "/" + String(Substring(rest)) : String(Substring(rest)))
    }

    /// The bytes of a request for this target: request line, `Host`, `headers`, `Content-Length` when there is a
    /// body, then the body. `nil` when a header name is not a token or a value holds CR, LF or NUL (which would
    /// let a value add its own header lines).
    func encode(method: HTTPMethod, headers: HTTPHeaders, body: [UInt8]?) -> ByteBuffer? {
        // The head is assembled in an array (each string's UTF-8 copied whole), then written once.
        var head: [UInt8] = []
        head.reserveCapacity(192 + pathAndQuery.utf8.count + hostHeader.utf8.count)
        Self.append(method.rawValue, to: &head)
        head.append(UInt8(ascii: " "))
        Self.append(pathAndQuery, to: &head)
        Self.append(" HTTP/1.1\r\nHost: ", to: &head)
        Self.append(hostHeader, to: &head)
        for (name, value) in headers {
            guard Self.isToken(name), Self.isFieldValue(value) else { return nil }
            head.append(0x0D)
            head.append(0x0A)
            Self.append(name, to: &head)
            head.append(UInt8(ascii: ":"))
            head.append(UInt8(ascii: " "))
            Self.append(value, to: &head)
        }
        if let body {
            Self.append("\r\nContent-Length: ", to: &head)
            Self.append(String(body.count), to: &head)
        }
        Self.append("\r\n\r\n", to: &head)
        var buffer = ByteBufferAllocator().buffer(capacity: head.count + (body?.count ?? 0))
        buffer.writeBytes(head)
        if let body { buffer.writeBytes(body) }
        return buffer
    }

    /// Appends the UTF-8 of `text` with one copy (`append(contentsOf: text.utf8)` walks it byte by byte).
    private static func append(_ text: String, to bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    private static func isToken(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in !bytes.isEmpty && bytes.allSatisfy(isTokenByte) }
    }

    private static func isFieldValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in !bytes.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 } }
    }

    private static func dropPrefix(_ bytes: inout Substring.UTF8View.SubSequence, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        var index = bytes.startIndex
        for offset in 0..<count {
            var byte = bytes[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            guard byte == prefix.utf8Start[offset] else { return false }
            index = bytes.index(after: index)
        }
        bytes = bytes[index...]
        return true
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
    }

    /// A byte of an HTTP token: a letter, a digit or one of the marks ! # $ % & ' * + - . ^ _ ` | ~.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E...0x60, 0x7C, 0x7E: true
        default: false
        }
    }
}
