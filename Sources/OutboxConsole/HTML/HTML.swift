/// A piece of HTML that is safe to send: literal text written in Swift is taken as markup, and every
/// `String` (or number, date, anything not `HTML`) interpolated into it is escaped. So a page is
/// written as
///
///     let row: HTML = "<tr><td>\(merchant.id)</td><td>\(merchant.name)</td></tr>"
///
/// and a merchant named `<script>` shows as text. Interpolate another `HTML` to nest markup
/// (`"<tbody>\(rows)</tbody>"`, where `rows` is `[HTML]` or `HTML`). Never build `HTML(unescaped:)`
/// from data: it exists for markup made here (an SVG the chart code drew from numbers, a vendored asset).
public struct HTML: Sendable, CustomStringConvertible, ExpressibleByStringInterpolation, Equatable {
    public private(set) var markup: String

    public var description: String { markup }

    /// Markup taken as is: only for text built by code, never for data from the database or a request.
    public init(unescaped markup: String) { self.markup = markup }

    public init(stringLiteral value: String) { markup = value }

    public init(stringInterpolation: Interpolation) { markup = stringInterpolation.markup }

    /// Several pieces one after another.
    public init(_ pieces: [HTML], separator: HTML = "") {
        markup = pieces.map(\.markup).joined(separator: separator.markup)
    }

    public static let empty: HTML = ""

    public static func + (lhs: HTML, rhs: HTML) -> HTML { HTML(unescaped: lhs.markup + rhs.markup) }
    public static func += (lhs: inout HTML, rhs: HTML) { lhs.markup += rhs.markup }

    public struct Interpolation: StringInterpolationProtocol {
        var markup = ""

        public init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity * 2) }

        public mutating func appendLiteral(_ literal: String) { markup += literal }

        /// Markup: taken as is.
        public mutating func appendInterpolation(_ html: HTML) { markup += html.markup }

        /// A list of markup pieces, one after another.
        public mutating func appendInterpolation(_ pieces: [HTML]) { for piece in pieces { markup += piece.markup } }

        /// Text: escaped (`&`, `<`, `>`, `"`, `'`), safe in element content and in quoted attributes.
        public mutating func appendInterpolation(_ text: String) { markup += HTML.escape(text) }

        /// Optional text: the empty string for nil.
        public mutating func appendInterpolation(_ text: String?) { markup += HTML.escape(text ?? "") }

        /// Anything else (numbers, ids): its description, escaped.
        public mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) {
            markup += HTML.escape(value.description)
        }
    }

    /// `text` escaped for HTML element content and quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
