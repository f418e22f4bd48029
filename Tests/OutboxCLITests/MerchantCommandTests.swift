import Foundation
import LibPQ
import Testing
import TestSupport

@Suite struct MerchantCommandTests {
    static let key = Data(Array(repeating: UInt8(9), count: 32)).base64EncodedString()
    static let secret = "AQAAAAEAACcQ-super-secret-value"
    static let tokenizationKey = "tokenization-key-very-private"

    func cli(_ db: TestDatabase, _ arguments: [String], stdin: String? = nil, actor: Bool = true) async throws -> ProcessResult {
        try await runCLI(arguments + (actor ? ["--actor", "alice"] : []),
                         environment: ["DATABASE_URL": db.url, "FLEXCHARGE_CREDENTIALS_KEY": Self.key], stdin: stdin)
    }

    @Test func switchesSitesAndCredentialsAreAuditedAndSecretsNeverShown() async throws {
        try await TestDatabase.with { db in
            var outputs: [String] = []
            func ok(_ arguments: [String], stdin: String? = nil, actor: Bool = true) async throws -> String {
                let run = try await cli(db, arguments, stdin: stdin, actor: actor)
                #expect(run.status == 0, "\(arguments): \(run.stderr)")
                outputs.append(run.stdout + run.stderr)
                return run.stdout
            }
            _ = try await ok(["merchant", "add", "shoes", "--name", "Shoes R Us", "--cit-website", "sandbox", "--mit", "production"])
            _ = try await ok(["merchant", "set", "shoes", "--cit-call-center", "off", "--cit-website", "production"])
            _ = try await ok(["merchant", "set", "shoes", "--site", "promo.example", "--cit-website", "sandbox"])
            _ = try await ok(["merchant", "credentials", "shoes", "--environment", "sandbox", "--mid", "5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76"],
                             stdin: "app_key=public-app-key\napp_secret=\(Self.secret)\ntokenization_key=\(Self.tokenizationKey)\n")
            _ = try await ok(["merchant", "credentials", "shoes", "--environment", "sandbox", "--mid", "5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76"],
                             stdin: "app_key=public-app-key\napp_secret=\(Self.secret)-rotated\n")
            let show = try await ok(["merchant", "show", "shoes"], actor: false)
            #expect(show.contains("cit_website      production"))
            #expect(show.contains("mit              production"))
            #expect(show.contains("site promo.example: cit_website=sandbox cit_call_center=inherit mit=inherit"))
            #expect(show.contains("credentials sandbox: mid 5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76, app key ****, app secret ****"))
            let list = try await ok(["merchant", "list"], actor: false)
            #expect(list.contains("shoes"))
            let history = try await ok(["merchant", "history", "shoes"], actor: false)
            let lines = history.split(separator: "\n")
            let expectedLines = 10  // add: merchant + 3 switches; set: 1 (call center was off already); site: 1; credentials twice: mid + secrets
            #expect(lines.count == expectedLines, "\(history)")
            let byAlice = lines.filter { $0.contains(" alice ") }.count
            #expect(byAlice == expectedLines)
            #expect(history.contains("set  cit_website: sandbox → production"))
            #expect(history.contains("site promo.example  cit_website: inherit → sandbox"))
            #expect(history.contains("credentials sandbox  secrets: set → changed"))

            // Secrets appear in no output and not in the database in clear.
            for output in outputs {
                #expect(!output.contains(Self.secret))
                #expect(!output.contains(Self.tokenizationKey))
            }
            let session = db.session()
            let dump = try await session.query(
                "SELECT (SELECT string_agg(t::text, ' ') FROM flexcharge.merchant_credentials t) || (SELECT string_agg(a::text, ' ') FROM flexcharge.merchant_audit a) AS everything"
            ).first!.decode("everything", as: String.self)
            #expect(!dump.contains(Self.secret))
            #expect(!dump.contains(Self.tokenizationKey))
            let secretHex: String = Data(Self.secret.utf8).map { String(format: "%02x", $0) }.joined()
            #expect(!dump.contains(secretHex))
            await session.close()
        }
    }

    @Test func rotateCredentialsReSealsUnderTheNewPrimaryKeyAndIsAudited() async throws {
        try await TestDatabase.with { db in
            let newKey = Data(Array(repeating: UInt8(77), count: 32)).base64EncodedString()
            func run(_ arguments: [String], keys: [String: String], stdin: String? = nil) async throws -> ProcessResult {
                try await runCLI(arguments, environment: ["DATABASE_URL": db.url].merging(keys) { $1 }, stdin: stdin)
            }
            let oldOnly = ["FLEXCHARGE_CREDENTIALS_KEY": Self.key]
            _ = try await cli(db, ["merchant", "add", "shoes"])
            for environment in ["sandbox", "production"] {
                let stored = try await run(["merchant", "credentials", "shoes", "--environment", environment, "--mid",
                                            "5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76", "--actor", "alice"], keys: oldOnly,
                                           stdin: "app_key=public-app-key\napp_secret=\(Self.secret)\nwebhook_key=\(Self.tokenizationKey)\n")
                #expect(stored.status == 0, "\(stored.stderr)")
            }
            // Both keys in a key file, the new one first (primary).
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString)").path
            try "# primary first\n\(newKey)\n\(Self.key)\n".write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let both = ["FLEXCHARGE_CREDENTIALS_KEYS_FILE": file]
            let dry = try await run(["merchant", "rotate-credentials", "--dry-run", "--actor", "bob"], keys: both)
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("shoes sandbox: key") && dry.stdout.contains("would be resealed"), "\(dry.stdout)")
            let rotated = try await run(["merchant", "rotate-credentials", "--actor", "bob"], keys: both)
            #expect(rotated.status == 0, "\(rotated.stderr)")
            #expect(rotated.stdout.contains("2 resealed"), "\(rotated.stdout)")
            // The new key alone opens every row now; the old key alone opens none (exit 1, rows named).
            let newOnly = ["FLEXCHARGE_CREDENTIALS_KEYS": newKey]
            let check = try await run(["merchant", "rotate-credentials", "--actor", "bob"], keys: newOnly)
            #expect(check.status == 0 && check.stdout.contains("2 current"), "\(check.stdout)\(check.stderr)")
            let stale = try await run(["merchant", "rotate-credentials", "--dry-run", "--actor", "bob"], keys: oldOnly)
            #expect(stale.status == 1)
            #expect(stale.stdout.contains("shoes production: key") && stale.stdout.contains("failed: merchant shoes, production app_key: sealed with key"),
                    "\(stale.stdout)")
            #expect(stale.stderr.contains("could not be opened"))
            let history = try await cli(db, ["merchant", "history", "shoes"], actor: false).stdout
            #expect(history.split(separator: "\n").filter { $0.contains(" bob ") && $0.contains("sealing key") }.count == 2, "\(history)")
            for output in [dry, rotated, check, stale].flatMap({ [$0.stdout, $0.stderr] }) + [history] {
                #expect(!output.contains(Self.secret) && !output.contains(Self.tokenizationKey) && !output.contains(newKey) && !output.contains(Self.key))
            }
        }
    }

    @Test(arguments: [
        (["merchant", "set", "nobody", "--mit", "sandbox"], "unknown merchant nobody"),
        (["merchant", "add", "m", "--mit", "live"], "--mit must be off, sandbox or production, not live"),
        (["merchant", "set", "m"], "nothing to change"),
        (["merchant", "show", "nobody"], "unknown merchant nobody"),
        (["merchant", "history", "nobody"], "unknown merchant nobody"),
        (["merchant", "credentials", "m", "--environment", "staging", "--mid", "5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76"], "--environment must be sandbox or production"),
        (["merchant", "credentials", "m", "--environment", "sandbox", "--mid", "not-a-guid"], "--mid must be a GUID"),
    ])
    func badInputGetsOneLineAndStatusTwo(arguments: [String], expected: String) async throws {
        try await TestDatabase.with { db in
            let readOnly = ["show", "history", "list"].contains(arguments[1])
            let run = try await cli(db, arguments, stdin: "app_key=a\napp_secret=b\n", actor: !readOnly)
            #expect(run.status == 2, "\(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1)
            #expect(run.stderr.contains(expected), "\(run.stderr)")
        }
    }

    @Test func secretsWithABadLineAreRefusedWithoutEchoingThem() async throws {
        try await TestDatabase.with { db in
            _ = try await cli(db, ["merchant", "add", "m"])
            let run = try await cli(db, ["merchant", "credentials", "m", "--environment", "sandbox", "--mid", "5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76"],
                                    stdin: "app_key=a\n\(Self.secret)\n")
            #expect(run.status == 2)
            #expect(!run.stderr.contains(Self.secret))
            #expect(run.stderr.contains("key=value"))
        }
    }
}

@Suite struct UsageTests {
    @Test func anUnknownOptionIsOneLineAndStatusTwo() async throws {
        let run = try await runCLI(["merchant", "show", "x", "--actor", "bob"])
        #expect(run.status == 2)
        #expect(run.stderr == "flexcharge-outbox: Unknown option '--actor' (see --help)\n")
    }

    /// Every command and subcommand (found from the help itself, so a new one is covered) shows at
    /// least one example: a line that runs it with concrete arguments, not the USAGE line.
    @Test func everyCommandsHelpTeachesWithAnExample() async throws {
        var commands: [[String]] = [], queue: [[String]] = [[]]
        while let command = queue.popLast() {
            let run = try await runCLI(command + ["--help"])
            #expect(run.status == 0, "\(command): \(run.stderr)")
            let subcommands = HelpText.subcommands(run.stdout)
            if command.isEmpty {
                try #require(subcommands.count >= 10, "the root help lists too few commands: \(run.stdout)")
            } else {
                commands.append(command)
                let examples = HelpText.examples(run.stdout, of: command)
                #expect(!examples.isEmpty, "\(command) has no example")
            }
            queue += subcommands.map { command + [$0] }
        }
        // The walk reached the nested commands too.
        #expect(commands.contains(["events", "show"]) && commands.contains(["merchant", "rotate-credentials"]), "\(commands)")
    }

    @Test func theExampleFinderIgnoresTheUsageLineAndPlaceholders() {
        let help = """
            OVERVIEW: Look at events.

            USAGE: flexcharge-outbox events show <id> [--json]

              flexcharge-outbox events show <id>
              flexcharge-outbox events showing 4711

            """
        #expect(HelpText.examples(help, of: ["events", "show"]).isEmpty)
        #expect(HelpText.examples(help + "Example: flexcharge-outbox events show 4711 --json\n", of: ["events", "show"])
                == ["flexcharge-outbox events show 4711 --json"])
        #expect(HelpText.examples("  flexcharge-outbox status\n", of: ["status"]) == ["flexcharge-outbox status"])
    }
}
