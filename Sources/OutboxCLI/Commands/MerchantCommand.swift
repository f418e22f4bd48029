import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

/// `flexcharge-outbox merchant ...`: enrol merchants and switch their channels.
struct MerchantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merchant",
        abstract: "Enrol merchants, switch CIT website / CIT call center / MIT, store credentials.",
        discussion: """
            Each channel is off, sandbox or production, so MIT can be live while CIT is still in \
            sandbox, or call-center orders off while websites are live. A site (website or campaign) \
            can override any switch. Changes apply to events claimed after them, and every change is \
            recorded in flexcharge.merchant_audit (see `merchant history`). Call-center CIT events \
            carry a marker FlexCharge can see (orderSource, transaction.cardNotPresent), set per \
            merchant with `merchant set --call-center-order-source / --call-center-card-not-present`.

            Examples:
              flexcharge-outbox merchant add shoes-r-us --cit-website sandbox --mit production
              flexcharge-outbox merchant set shoes-r-us --cit-call-center off
              flexcharge-outbox merchant set shoes-r-us --call-center-order-source moto --call-center-card-not-present true
              flexcharge-outbox merchant set shoes-r-us --site https://promo.shoes.example --cit-website production
              printf 'app_key=...\\napp_secret=...\\ntokenization_key=...\\n' | \\
                flexcharge-outbox merchant credentials shoes-r-us --environment sandbox --mid 5f1c...
              flexcharge-outbox merchant show shoes-r-us
              flexcharge-outbox merchant rotate-credentials --dry-run
            """,
        subcommands: [Add.self, Set.self, Credentials.self, RotateCredentials.self, Show.self, List.self, History.self]
    )
}

/// Options naming who makes a change (for the audit trail).
struct ActorOption: ParsableArguments {
    @Option(help: "Who makes the change, for the audit trail (default: the OS user).")
    var actor: String?

    var name: String { actor ?? ProcessInfo.processInfo.environment["USER"] ?? NSUserName() }
}

/// The three switches as options.
struct SwitchOptions: ParsableArguments {
    @Option(help: "CIT orders placed on a website: off, sandbox or production (inherit: for --site, use the merchant's).")
    var citWebsite: String?

    @Option(help: "CIT orders keyed in by a call center: off, sandbox or production (or inherit with --site).")
    var citCallCenter: String?

    @Option(help: "Merchant-initiated transactions: off, sandbox or production (or inherit with --site).")
    var mit: String?

    /// The switches given; `.some(nil)` is "inherit" (sites only).
    func values(allowInherit: Bool) throws -> [Channel: ChannelSwitch?] {
        var values: [Channel: ChannelSwitch?] = [:]
        for (channel, text, option) in [(Channel.citWebsite, citWebsite, "--cit-website"), (.citCallCenter, citCallCenter, "--cit-call-center"), (.mit, mit, "--mit")] {
            guard let text else { continue }
            guard let value = ChannelSwitch.parse(text, allowInherit: allowInherit) else {
                throw CLIFailure.badInput("\(option) must be off, sandbox or production\(allowInherit ? " (or inherit)" : ""), not \(text)")
            }
            values[channel] = value
        }
        return values
    }
}

extension MerchantCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol a merchant (every channel off unless given).",
            discussion: "Example: flexcharge-outbox merchant add shoes-r-us --name 'Shoes R Us' --cit-website sandbox")

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @OptionGroup var switches: SwitchOptions
        @Argument(help: "The gateway's merchant id (outbox.merchant_id).") var merchantID: String
        @Option(help: "A display name.") var name: String?

        func run() async throws {
            let values = try switches.values(allowInherit: false).compactMapValues { $0 }
            try await database.withSession { session in
                try await merchantCall { try await MerchantStore(session: session, actor: actor.name).add(merchantID, name: name, switches: values) }
                print("merchant \(merchantID) added")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a merchant's switches or call-center marker, or a site's overrides with --site.",
            discussion: """
                The call-center marker tells FlexCharge that a CIT order was keyed in by a call center \
                (FlexCharge documents no MOTO value, so ask FlexCharge which to use). It is sent on \
                call-center CIT transmits and evaluates only: orderSource (default call_center; none \
                sends no orderSource) and transaction.cardNotPresent (default true).

                Examples:
                  flexcharge-outbox merchant set shoes-r-us --mit production
                  flexcharge-outbox merchant set shoes-r-us --call-center-order-source moto
                  flexcharge-outbox merchant set shoes-r-us --rate-limit 20/s
                  flexcharge-outbox merchant set shoes-r-us --call-center-order-source none --call-center-card-not-present false
                  flexcharge-outbox merchant set shoes-r-us --site shoes.example --cit-website off
                  flexcharge-outbox merchant set shoes-r-us --site shoes.example --cit-website inherit
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @OptionGroup var switches: SwitchOptions
        @Argument(help: "The merchant id.") var merchantID: String
        @Option(help: "A site (the events' site_url, else descriptor) whose overrides to change.") var site: String?
        @Option(help: "A display name.") var name: String?
        @Option(help: "orderSource sent on call-center CIT events (default call_center), or none.")
        var callCenterOrderSource: String?
        @Option(help: "transaction.cardNotPresent sent on call-center CIT events: true (default) or false.")
        var callCenterCardNotPresent: String?
        @Option(help: "Calls a second toward FlexCharge per environment, shared by all workers (e.g. 20/s), or none.")
        var rateLimit: String?

        func run() async throws {
            let values = try switches.values(allowInherit: site != nil)
            var callCenter = CallCenterMarkerChange()
            if let text = callCenterOrderSource {
                callCenter.orderSource = .some(text == "none" ? nil : text)
            }
            if let text = callCenterCardNotPresent {
                guard let value = Bool(text) else {
                    throw CLIFailure.badInput("--call-center-card-not-present must be true or false, not \(text)")
                }
                callCenter.cardNotPresent = value
            }
            var limit: MerchantRateLimit?? = nil
            if let text = rateLimit {
                guard text == "none" || MerchantRateLimit(parsing: text) != nil else {
                    throw CLIFailure.badInput("--rate-limit must be N/s with N from \(MerchantRateLimit.range.lowerBound) to \(MerchantRateLimit.range.upperBound), or none, not \(text)")
                }
                limit = .some(MerchantRateLimit(parsing: text))
            }
            guard !values.isEmpty || name != nil || !callCenter.isEmpty || limit != nil else {
                throw CLIFailure.badInput(
                    "nothing to change: give --cit-website, --cit-call-center, --mit, --name, --call-center-order-source, --call-center-card-not-present or --rate-limit")
            }
            try await database.withSession { session in
                try await merchantCall {
                    try await MerchantStore(session: session, actor: actor.name).set(
                        merchantID, site: site, name: name, switches: values, callCenter: callCenter, rateLimit: limit)
                }
                print("merchant \(merchantID) updated")
            }
        }
    }

    struct Credentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a merchant's FlexCharge credentials for one environment (secrets from stdin or a file).",
            discussion: """
                Secrets are read as key=value lines (app_key, app_secret, tokenization_key, webhook_key) \
                from --secrets-file or stdin, never from the command line, and stored sealed with the \
                primary credentials key (FLEXCHARGE_CREDENTIALS_KEY, or the first of \
                FLEXCHARGE_CREDENTIALS_KEYS / _KEYS_FILE), each bound to its merchant, environment and \
                field. They are never printed back.

                Example:
                  flexcharge-outbox merchant credentials shoes-r-us --environment production \\
                    --mid 5f1c2b4e-8d3a-4f5b-9c7e-2a1d0e9f8b76 --secrets-file /run/secrets/shoes-r-us
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The merchant id.") var merchantID: String
        @Option(help: "sandbox or production.") var environment: String
        @Option(help: "The merchant's FlexCharge MID (GUID; not secret).") var mid: String
        @Option(help: "File with the secrets (default: read stdin).") var secretsFile: String?

        func run() async throws {
            guard ["sandbox", "production"].contains(environment) else {
                throw CLIFailure.badInput("--environment must be sandbox or production, not \(environment)")
            }
            guard UUID(uuidString: mid) != nil else { throw CLIFailure.badInput("--mid must be a GUID (FlexCharge's merchant id)") }
            let text: String
            if let secretsFile {
                guard let data = FileManager.default.contents(atPath: secretsFile) else {
                    throw CLIFailure.badInput("cannot read --secrets-file \(secretsFile)")
                }
                text = String(decoding: data, as: UTF8.self)
            } else {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            }
            let secrets: MerchantSecrets
            do {
                secrets = try MerchantSecrets.parse(text)
            } catch {
                throw CLIFailure.badInput(error.description)
            }
            let sealer = try ProcessSetup.credentialSealer()
            try await database.withSession { session in
                try await merchantCall {
                    try await MerchantStore(session: session, actor: actor.name).setCredentials(
                        merchantID, environment: environment, mid: mid, secrets: secrets, sealer: sealer)
                }
                print("\(environment) credentials of merchant \(merchantID) stored (sealed with key \(sealer.keyID))")
            }
        }
    }

    struct RotateCredentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-credentials",
            abstract: "Re-seal every merchant's stored secrets with the primary credentials key (key rotation, v1 upgrade).",
            discussion: """
                Opens each row of flexcharge.merchant_credentials with any loaded key and seals it again \
                with the primary key, in the current format (bound to merchant, environment and field). \
                One row per transaction, each audited in merchant history (key ids, never values). Rows \
                already sealed with the primary key are left alone, so it can be run again at any time. \
                Workers keep running meanwhile: give them both keys first.

                Rotation, old key A to new key B:
                  1. every process: FLEXCHARGE_CREDENTIALS_KEYS_FILE lists A then B (A still primary); restart
                  2. every process: B first (B primary); restart. New values are sealed with B.
                  3. run this command with both keys loaded
                  4. remove A; restart

                Examples:
                  FLEXCHARGE_CREDENTIALS_KEYS_FILE=/run/secrets/flexcharge-keys flexcharge-outbox merchant rotate-credentials --dry-run
                  FLEXCHARGE_CREDENTIALS_KEYS="$NEW_KEY,$OLD_KEY" flexcharge-outbox merchant rotate-credentials

                Exits 0 when every row is sealed with the primary key, 1 when a row could not be opened \
                (listed, left as it was: store it again with merchant credentials).
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Flag(help: "Only list what would be re-sealed.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let sealer = try ProcessSetup.credentialSealer()
            let rotations = try await database.withSession { session in
                try await MerchantStore(session: session, actor: actor.name).rotateCredentials(sealer: sealer, dryRun: dryRun)
            }
            if json {
                print(try jsonText(rotations))
            } else {
                print("keys loaded: \(sealer.keyIDs.joined(separator: ", ")) (primary \(sealer.keyID))")
                for rotation in rotations {
                    print("\(rotation.merchantID) \(rotation.environment): key \(rotation.fromKeyID) → \(rotation.result)")
                }
                let counts = Dictionary(grouping: rotations, by: { $0.result.hasPrefix("failed") ? "failed" : $0.result }).mapValues(\.count)
                print(counts.sorted(by: { $0.key < $1.key }).map { "\($0.value) \($0.key)" }.joined(separator: ", ").nonEmpty ?? "no credentials stored")
            }
            if rotations.contains(where: { $0.result.hasPrefix("failed") }) {
                throw CLIFailure.failed("some credentials could not be opened with the loaded keys (see above)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a merchant's switches, site overrides and credentials (secrets masked).",
            discussion: "Example: flexcharge-outbox merchant show shoes-r-us --json")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The merchant id.") var merchantID: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await database.withSession { session in
                guard let settings = try await MerchantStore(session: session, actor: "").settings(merchantID) else {
                    throw CLIFailure.badInput("unknown merchant \(merchantID)")
                }
                if json {
                    print(try jsonText(settings))
                    return
                }
                print("merchant     \(settings.merchantID)\(settings.name.map { " (\($0))" } ?? "")")
                for channel in Channel.allCases {
                    print("  \(channel.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)) \(settings.switches[channel]?.rawValue ?? "off")")
                }
                for (site, overrides) in settings.sites.sorted(by: { $0.key < $1.key }) {
                    let text = Channel.allCases.map { "\($0.rawValue)=\(overrides[$0]?.rawValue ?? "inherit")" }.joined(separator: " ")
                    print("  site \(site): \(text)")
                }
                for (environment, mid) in settings.credentials.sorted(by: { $0.key < $1.key }) {
                    print("  credentials \(environment): mid \(mid), app key ****, app secret ****")
                }
                if settings.credentials.isEmpty { print("  credentials: none") }
                print("  call center marker: orderSource \(settings.callCenter.orderSource ?? "none"), cardNotPresent \(settings.callCenter.cardNotPresent)")
                print("  rate limit: \(settings.rateLimit.map { "\($0) per environment" } ?? "none")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List merchants and their switches.", discussion: "Example: flexcharge-outbox merchant list")

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await database.withSession { session in
                let merchants = try await MerchantStore(session: session, actor: "").list()
                print("merchant                         cit_website  cit_call_center  mit")
                for m in merchants {
                    print("\(m.merchantID.padding(toLength: 32, withPad: " ", startingAt: 0)) \((m.switches[.citWebsite]?.rawValue ?? "off").padding(toLength: 12, withPad: " ", startingAt: 0)) \((m.switches[.citCallCenter]?.rawValue ?? "off").padding(toLength: 16, withPad: " ", startingAt: 0)) \(m.switches[.mit]?.rawValue ?? "off")")
                }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the audit trail of a merchant: when, who, what, old → new.",
            discussion: "Example: flexcharge-outbox merchant history shoes-r-us")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The merchant id.") var merchantID: String

        func run() async throws {
            try await database.withSession { session in
                let store = MerchantStore(session: session, actor: "")
                guard try await store.settings(merchantID) != nil else { throw CLIFailure.badInput("unknown merchant \(merchantID)") }
                let formatter = ISO8601DateFormatter()
                for entry in try await store.history(merchantID) {
                    print("\(formatter.string(from: entry.at))  \(entry.actor)  \(entry.action)  \(entry.field): \(entry.old ?? "-") → \(entry.new ?? "-")")
                }
            }
        }
    }
}

/// Turns a ``MerchantError`` into exit status 2 (bad input: unknown or duplicate merchant).
func merchantCall(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as MerchantError {
        throw CLIFailure.badInput(error.description)
    }
}

/// Pretty, stable JSON for `--json` outputs.
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
