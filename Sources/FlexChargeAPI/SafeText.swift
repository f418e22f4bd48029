/// The one home for text that came from outside (an HTTP response or request, a database row) and is about to
/// be stored, shown or logged.
///
/// - ``stored(_:limit:)`` bounds a free-text value before it is kept: control characters become spaces, the
///   value is cut at `limit` characters (a trailing `…` says so). For error messages and statuses.
/// - ``isIdentifier(_:limit:)`` says whether a value can be used as an id (order ids, transaction keys, tokens):
///   1 to `limit` printable characters, no control characters, no spaces at the ends. An id is refused, never
///   cut: a shortened id would name another order.
/// - ``forLog(_:limit:)`` is what a log line may show of a request-supplied value: quoted, with `"`, `\` and
///   every control or non-ASCII-printable character escaped (`\n`, `\u{1B}`), cut at `limit`. A value written
///   this way can never end a log line or forge another one.
public enum SafeText {
    /// Longest free-text value kept from a FlexCharge answer (error messages, statuses).
    public static let maximumStoredLength = 500
    /// Longest identifier accepted from a FlexCharge answer (FlexCharge's ids are GUIDs, 36 characters).
    public static let maximumIdentifierLength = 200
    /// Longest request-supplied value shown in a log line.
    public static let maximumLoggedLength = 120

    /// `text` with control characters replaced by spaces and cut at `limit` characters.
    public static func stored(_ text: String, limit: Int = maximumStoredLength) -> String {
        // The usual value (printable ASCII, short) is kept as it is: one byte per character, nothing to replace.
        if text.utf8.count <= limit && isPrintableASCII(text) { return text }
        var result = ""
        result.unicodeScalars.reserveCapacity(min(text.unicodeScalars.count, limit + 1))
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                result.unicodeScalars.append("…")
                break
            }
            result.unicodeScalars.append(isControl(scalar) ? " " : scalar)
            count += 1
        }
        return result
    }

    /// `text` or nil, bounded as by ``stored(_:limit:)``.
    public static func stored(_ text: String?, limit: Int = maximumStoredLength) -> String? {
        text.map { stored($0, limit: limit) }
    }

    /// True when `text` can be kept as an identifier as it is.
    public static func isIdentifier(_ text: String, limit: Int = maximumIdentifierLength) -> Bool {
        if isPrintableASCII(text) {
            // One scalar per byte; the only whitespace among printable ASCII is the space.
            let utf8 = text.utf8
            return !utf8.isEmpty && utf8.count <= limit && utf8.first != 0x20 && utf8.last != 0x20
        }
        let scalars = text.unicodeScalars
        guard !scalars.isEmpty, scalars.count <= limit else { return false }
        guard let first = scalars.first, let last = scalars.last, !first.properties.isWhitespace, !last.properties.isWhitespace else { return false }
        return !scalars.contains(where: isControl)
    }

    /// `text` quoted and escaped for a log line, cut at `limit` characters.
    public static func forLog(_ text: String?, limit: Int = maximumLoggedLength) -> String {
        guard let text else { return "-" }
        var result = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                result += "…"
                break
            }
            count += 1
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case " "..."~": result.unicodeScalars.append(scalar)
            default: result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            }
        }
        return result + "\""
    }

    /// True when every byte of `text` is printable ASCII (space to `~`).
    private static func isPrintableASCII(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } }
    }

    /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators (some log viewers break on them).
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F..<0xA0, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
