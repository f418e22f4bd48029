import Foundation
import Logging

extension CredentialSealer {
    /// The key ring from the process environment:
    ///
    /// - `FLEXCHARGE_CREDENTIALS_KEYS`: base64 keys separated by commas, spaces or newlines, or
    /// - `FLEXCHARGE_CREDENTIALS_KEYS_FILE`: a file with one base64 key per line (`#` comments), e.g.
    ///   one entry of a Kubernetes Secret or a systemd `LoadCredential=`; or a directory whose every
    ///   file (names starting with `.` skipped, as in a Secret mount) holds such lines;
    /// - `FLEXCHARGE_CREDENTIALS_KEY` / `FLEXCHARGE_CREDENTIALS_KEY_FILE`: one key, as before; with
    ///   one of the above it is loaded as well (to open what it sealed).
    ///
    /// The primary (sealing) key is `FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID` when set, else the
    /// first key listed (a directory holding several keys needs the variable). Values sealed in the
    /// legacy v1 format are opened unless `FLEXCHARGE_CREDENTIALS_LEGACY=refuse`.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "flexcharge.credentials")
    ) throws(CredentialError) -> CredentialSealer {
        var keys: [[UInt8]] = []
        var needsPrimary = false
        if environment["FLEXCHARGE_CREDENTIALS_KEYS"] != nil && environment["FLEXCHARGE_CREDENTIALS_KEYS_FILE"] != nil {
            throw CredentialError("set FLEXCHARGE_CREDENTIALS_KEYS or FLEXCHARGE_CREDENTIALS_KEYS_FILE, not both")
        }
        if let list = environment["FLEXCHARGE_CREDENTIALS_KEYS"] {
            keys += try parse(list, source: "FLEXCHARGE_CREDENTIALS_KEYS")
        } else if let path = environment["FLEXCHARGE_CREDENTIALS_KEYS_FILE"] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CredentialError("cannot read FLEXCHARGE_CREDENTIALS_KEYS_FILE \(path)")
            }
            if isDirectory.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
                for name in names {
                    let file = (path as NSString).appendingPathComponent(name)
                    var fileIsDirectory: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: file, isDirectory: &fileIsDirectory), !fileIsDirectory.boolValue else { continue }
                    keys += try parse(try read(file, variable: "FLEXCHARGE_CREDENTIALS_KEYS_FILE"), source: file)
                }
                needsPrimary = keys.count > 1
            } else {
                keys += try parse(try read(path, variable: "FLEXCHARGE_CREDENTIALS_KEYS_FILE"), source: path)
            }
        }
        var single = environment["FLEXCHARGE_CREDENTIALS_KEY"]
        if single == nil, let path = environment["FLEXCHARGE_CREDENTIALS_KEY_FILE"] {
            single = try read(path, variable: "FLEXCHARGE_CREDENTIALS_KEY_FILE")
        }
        if let single {
            let parsed = try parse(single, source: environment["FLEXCHARGE_CREDENTIALS_KEY"] != nil
                                   ? "FLEXCHARGE_CREDENTIALS_KEY" : "FLEXCHARGE_CREDENTIALS_KEY_FILE")
            guard parsed.count == 1 else {
                throw CredentialError("FLEXCHARGE_CREDENTIALS_KEY holds one key; list several in FLEXCHARGE_CREDENTIALS_KEYS")
            }
            keys += parsed
        }
        guard !keys.isEmpty else {
            throw CredentialError("""
                set FLEXCHARGE_CREDENTIALS_KEY (base64 of 32 random bytes: openssl rand -base64 32), \
                FLEXCHARGE_CREDENTIALS_KEY_FILE, FLEXCHARGE_CREDENTIALS_KEYS or FLEXCHARGE_CREDENTIALS_KEYS_FILE
                """)
        }
        let primary = environment["FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID"].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        if needsPrimary && primary == nil {
            throw CredentialError("FLEXCHARGE_CREDENTIALS_KEYS_FILE is a directory with several keys: set FLEXCHARGE_CREDENTIALS_PRIMARY_KEY_ID")
        }
        let legacy = environment["FLEXCHARGE_CREDENTIALS_LEGACY"] ?? "allow"
        guard legacy == "allow" || legacy == "refuse" else {
            throw CredentialError("FLEXCHARGE_CREDENTIALS_LEGACY must be allow or refuse, not \(legacy)")
        }
        return try CredentialSealer(keys: keys, primaryID: primary, allowsLegacy: legacy == "allow", logger: logger)
    }

    private static func read(_ path: String, variable: String) throws(CredentialError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CredentialError("cannot read \(variable) \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Base64 keys separated by commas, spaces or newlines; `#` starts a comment line. Errors say
    /// which entry is bad, never what it holds.
    static func parse(_ text: String, source: String) throws(CredentialError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        let lines = text.split(whereSeparator: \.isNewline).filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        let entries = lines.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) }
        for (index, entry) in entries.enumerated() {
            guard let bytes = Data(base64Encoded: String(entry)), bytes.count == 32 else {
                throw CredentialError("entry \(index + 1) of \(source) is not base64 of 32 bytes (openssl rand -base64 32)")
            }
            keys.append(Array(bytes))
        }
        return keys
    }
}
