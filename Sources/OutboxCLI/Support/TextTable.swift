import Foundation

/// A plain-text table with aligned columns; numbers align right. Colour only on a terminal.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return Double(cell) != nil ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        let bold = Terminal.isColour ? "\u{1B}[1m" : "", reset = Terminal.isColour ? "\u{1B}[0m" : ""
        return ([bold + line(headers) + reset] + rows.map(line)).joined(separator: "\n")
    }
}

enum Terminal {
    /// Colour when stdout is a terminal and NO_COLOR is not set.
    static let isColour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil

    static func red(_ text: String) -> String { isColour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
    static func green(_ text: String) -> String { isColour ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
}
