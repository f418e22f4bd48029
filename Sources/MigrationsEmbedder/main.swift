import Foundation

// `MigrationsEmbedder OUTPUT FILE...`: writes a Swift file holding each SQL file's name and exact
// text (byte for byte, so its checksum is the file's), for the EmbedMigrations plugin.

/// A Swift string literal of `text`: escapes quotes, backslashes and control characters.
func literal(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("MigrationsEmbedder: \(message)\n".utf8))
    exit(1)
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let output = arguments.first else { fail("usage: MigrationsEmbedder OUTPUT FILE...") }
var source = """
    // Generated at build time by the EmbedMigrations plugin from migrations/*.sql: do not edit.

    enum EmbeddedMigrationFiles {
        static let files: [(fileName: String, sql: String)] = [

    """
for path in arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
        fail("cannot read \(path) as UTF-8")
    }
    source += "        (\(literal(URL(fileURLWithPath: path).lastPathComponent)), \(literal(sql))),\n"
}
source += "    ]\n}\n"
do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: output))
} catch {
    fail("cannot write \(output): \(error)")
}
