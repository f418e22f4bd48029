/// Reads `--help` output of ArgumentParser.
enum HelpText {
    /// The names listed under `SUBCOMMANDS:` (without `help`).
    static func subcommands(_ help: String) -> [String] {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("SUBCOMMANDS:") }) else { return [] }
        var names: [String] = []
        for line in lines[(start + 1)...] {
            if !line.isEmpty && !line.hasPrefix(" ") { break }  // the next section
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }  // blank, or a wrapped abstract
            let name = line.dropFirst(2).prefix { $0 != " " }
            // A command name (lower case); "See 'flexcharge-outbox help …'" is not one.
            if !name.isEmpty && name.allSatisfy({ $0.isLowercase || $0 == "-" }) && name != "help" { names.append(String(name)) }
        }
        return names
    }

    /// Example lines for `command`: lines (optionally after `Example:`) that run
    /// `flexcharge-outbox <command>` with nothing but concrete words, i.e. not the USAGE line and no
    /// `<placeholder>` or `[optional]` part.
    static func examples(_ help: String, of command: [String]) -> [String] {
        let invocation = (["flexcharge-outbox"] + command).joined(separator: " ")
        return help.split(separator: "\n").compactMap { raw in
            var line = raw.trimmingPrefix(while: \.isWhitespace)
            if line.hasPrefix("Example:") { line = line.dropFirst("Example:".count).trimmingPrefix(while: \.isWhitespace) }
            guard line == invocation || line.hasPrefix(invocation + " ") else { return nil }
            guard !line.contains("<"), !line.contains("[") else { return nil }
            return String(line)
        }
    }
}
