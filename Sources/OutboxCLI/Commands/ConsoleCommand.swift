import ArgumentParser
import Foundation
import LibPQ
import Logging
import OutboxConsole
import OutboxEngine
import ServiceLifecycle
import UnixSignals

/// `flexcharge-outbox console`: the ops console (web pages) and its accounts.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the ops console (web pages for merchants, queue, events, reports); manage its accounts.",
        discussion: """
            The console reads the same database and acts through the same code as the CLI: a switch \
            changed there is audited in flexcharge.merchant_audit, a retry is the CLI's retry, under \
            the signed-in account's name (actor console:<name>). Run it, and `console user ...`, with a \
            login in the flexcharge_console role (a member of flexcharge_operator that alone may read and \
            write the console's accounts and sessions; migrations/0037_console_role.sql says why):
              CREATE ROLE outbox_console LOGIN PASSWORD '...' IN ROLE flexcharge_console;

            Roles: viewer reads every page; operator also retries, skips, pauses and resumes events; \
            admin also changes merchant switches and credentials and manages console accounts.

            It listens on 127.0.0.1 by default. In production put it behind the gateway's TLS proxy: \
            its session cookie is Secure (HTTPS only), HttpOnly and SameSite=Strict. Plain-HTTP \
            cookies (--insecure-cookies) are for tests on loopback only.

            First steps:
              flexcharge-outbox migrate
              printf '%s\\n' "$ADMIN_PASSWORD" | flexcharge-outbox console user add alice --role admin
              flexcharge-outbox console user totp alice      # prints the otpauth:// URI for an authenticator app
              flexcharge-outbox console --port 8090          # then browse https://<proxy>/ and sign in

            Behind an SSO proxy that signs people in itself:
              flexcharge-outbox console --sso-header X-Forwarded-User --trusted-proxy 10.0.0.5
            (the header is believed only from the listed proxy addresses, and names an existing account). \
            Behind a proxy, always name it with --trusted-proxy: failed sign-ins are then counted per client \
            address from its X-Forwarded-For, not all against the proxy's address.
            """,
        subcommands: [Serve.self, User.self, RequireTOTP.self],
        defaultSubcommand: Serve.self
    )

    /// `console` / `console serve`: the web server.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve the console (the default subcommand; runs until SIGTERM).",
            discussion: """
                Examples (`console` alone means `console serve`):
                  flexcharge-outbox console serve --port 8090
                  flexcharge-outbox console --host 0.0.0.0 --port 8090 --trusted-proxy 10.0.0.5 --sso-header X-Forwarded-User
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Address to bind (loopback by default; put a TLS proxy in front for anyone else).")
        var host = "127.0.0.1"

        @Option(help: "Port to bind.")
        var port = 8090

        @Flag(help: "Session cookies without Secure, for plain-HTTP tests: refused unless --host is loopback.")
        var insecureCookies = false

        @Option(help: ArgumentHelp("A session ends this many hours after sign-in.", valueName: "hours"))
        var sessionHours = 12

        @Option(help: ArgumentHelp("A session ends after this many minutes without a request.", valueName: "minutes"))
        var idleMinutes = 60

        @Option(help: ArgumentHelp("Failed sign-ins allowed per account within --signin-window-minutes.", valueName: "n"))
        var signinFailuresPerAccount = 5

        @Option(help: ArgumentHelp("Failed sign-ins allowed per client address within --signin-window-minutes.", valueName: "n"))
        var signinFailuresPerAddress = 20

        @Option(help: ArgumentHelp("The window over which failed sign-ins are counted.", valueName: "minutes"))
        var signinWindowMinutes = 15

        @Option(help: ArgumentHelp("Trust this request header, set by the proxy after its own sign-in, as the account name (off by default).",
                                   valueName: "header"))
        var ssoHeader: String?

        @Option(help: ArgumentHelp("A proxy address (exact IP) whose X-Forwarded-For (the client address sign-in throttling counts) and --sso-header are believed; repeat for several.",
                                   valueName: "ip"))
        var trustedProxy: [String] = []

        @Option(help: ArgumentHelp("PostgreSQL sessions shared by all requests.", valueName: "n"))
        var databaseConnections = 4

        @OptionGroup var window: IdempotencyWindowOption

        @Option(help: "trace, debug, info, notice, warning, error or critical.")
        var logLevel: Logger.Level = .info

        func validate() throws {
            if insecureCookies && !["127.0.0.1", "::1", "localhost"].contains(host) {
                throw ValidationError("--insecure-cookies is for loopback only: behind a proxy, serve over its HTTPS")
            }
            for (value, option) in [(sessionHours, "session-hours"), (idleMinutes, "idle-minutes"), (signinFailuresPerAccount, "signin-failures-per-account"),
                                    (signinFailuresPerAddress, "signin-failures-per-address"), (signinWindowMinutes, "signin-window-minutes"),
                                    (databaseConnections, "database-connections")] where value < 1 {
                throw ValidationError("--\(option) must be at least 1")
            }
            if ssoHeader != nil && trustedProxy.isEmpty {
                throw ValidationError("--sso-header needs --trusted-proxy: the header is believed only from the proxy's address")
            }
            if let ssoHeader, ssoHeader.isEmpty || !ssoHeader.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                throw ValidationError("--sso-header must be a header name (letters, digits, - and _)")
            }
        }

        func run() async throws {
            ProcessSetup.bootstrapLogging(logLevel)
            let logger = Logger(label: "flexcharge.console")
            let environment = ProcessInfo.processInfo.environment
            let hasKey = ["FLEXCHARGE_CREDENTIALS_KEY", "FLEXCHARGE_CREDENTIALS_KEY_FILE", "FLEXCHARGE_CREDENTIALS_KEYS",
                          "FLEXCHARGE_CREDENTIALS_KEYS_FILE"].contains { environment[$0] != nil }
            let sealer = hasKey ? try ProcessSetup.credentialSealer() : nil
            try await database.withSession { try await ConsoleCommand.requireConsoleRole($0) }
            let pool = PGPool(configuration: database.configuration, size: databaseConnections, name: "console", leaseTimeout: .seconds(10))
            let services = ConsoleServices(
                pool: pool, retryPolicy: RetryPolicy(idempotencyWindow: window.idempotencyWindow), sealer: sealer, logger: logger)
            let configuration = ConsoleConfiguration(
                host: host, port: port, secureCookies: !insecureCookies,
                sessionLifetime: .seconds(sessionHours * 3600), sessionIdleTimeout: .seconds(idleMinutes * 60),
                signInThrottle: SignInThrottle(perAccount: signinFailuresPerAccount, perAddress: signinFailuresPerAddress,
                                               window: .seconds(signinWindowMinutes * 60)),
                ssoHeader: ssoHeader, trustedProxies: trustedProxy)
            let app = ConsoleServer.application(configuration: configuration, services: services)
            let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            await pool.close()
        }
    }

    /// `console user add|password|role|totp|disable|enable|list`.
    struct User: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "user",
            abstract: "Add console accounts, set their password, role or authenticator, disable them.",
            discussion: """
                Passwords are read from stdin (one line; never an argument, which `ps` would show) and \
                stored as bcrypt hashes. Every change is recorded in flexcharge.console_audit.

                Examples:
                  printf '%s\\n' "$PASSWORD" | flexcharge-outbox console user add alice --role operator
                  flexcharge-outbox console user add sso-bob --role viewer --sso-only
                  flexcharge-outbox console user role alice admin
                  flexcharge-outbox console user totp alice
                  flexcharge-outbox console user disable alice
                  flexcharge-outbox console user list
                """,
            subcommands: [Add.self, Password.self, Role.self, TOTPEnrol.self, Disable.self, Enable.self, List.self])
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Add an account; its password comes from stdin (at least 12 characters).",
            discussion: """
                Examples:
                  printf '%s\\n' "$PASSWORD" | flexcharge-outbox console user add alice --role operator
                  flexcharge-outbox console user add sso-bob --role viewer --sso-only
                """)
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name (letters, digits, . _ @ -).") var name: String
        @Option(help: "viewer, operator or admin.") var role: String
        @Flag(help: "No password: the account signs in only through the proxy's SSO header.") var ssoOnly = false

        func run() async throws {
            let role = try ConsoleCommand.role(role)
            let password = ssoOnly ? nil : try ConsoleCommand.passwordFromStdin()
            try await ConsoleCommand.accounts(database, actor) { try await $0.add(name, role: role, password: password) }
            print("console account \(name) added (\(role.rawValue)\(ssoOnly ? ", SSO only" : ""))")
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "password", abstract: "Set an account's password from stdin (ends its sessions).",
            discussion: """
                Example (the new password on stdin):
                  flexcharge-outbox console user password alice
                """)
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            let password = try ConsoleCommand.passwordFromStdin()
            try await ConsoleCommand.accounts(database, actor) { try await $0.setPassword(name, password: password) }
            print("password of \(name) changed")
        }
    }

    struct Role: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "role", abstract: "Change an account's role.",
            discussion: "Example: flexcharge-outbox console user role alice admin")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name.") var name: String
        @Argument(help: "viewer, operator or admin.") var role: String

        func run() async throws {
            let role = try ConsoleCommand.role(role)
            try await ConsoleCommand.accounts(database, actor) { try await $0.setRole(name, role: role) }
            print("\(name) is now \(role.rawValue)")
        }
    }

    struct TOTPEnrol: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "totp",
            abstract: "Give an account a new authenticator secret and print its otpauth:// URI (or --remove it).",
            discussion: """
                Enter the printed URI in an authenticator app (or turn it into a QR code on a trusted \
                machine, e.g. `qrencode -t ansiutf8`). From then on the account's password sign-in also \
                asks for the app's 6-digit code. The URI holds the secret: do not paste it into a ticket. \
                Enrolling again replaces the secret and ends the account's sessions.

                Examples:
                  flexcharge-outbox console user totp alice
                  flexcharge-outbox console user totp alice --remove
                """)
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name.") var name: String
        @Flag(help: "Remove the account's authenticator instead (a lost phone).") var remove = false

        func run() async throws {
            if remove {
                try await ConsoleCommand.accounts(database, actor) { try await $0.removeTOTP(name) }
                print("authenticator of \(name) removed")
            } else {
                print(try await ConsoleCommand.accounts(database, actor) { try await $0.enrolTOTP(name) })
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "disable", abstract: "Disable an account (ends its sessions).",
            discussion: "Example: flexcharge-outbox console user disable alice")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            try await ConsoleCommand.accounts(database, actor) { try await $0.setDisabled(name, true) }
            print("\(name) disabled")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enable", abstract: "Enable a disabled account.",
            discussion: "Example: flexcharge-outbox console user enable alice")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            try await ConsoleCommand.accounts(database, actor) { try await $0.setDisabled(name, false) }
            print("\(name) enabled")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the accounts (never a hash or secret).",
            discussion: "Example: flexcharge-outbox console user list")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let accounts = try await ConsoleCommand.accounts(database, actor: "") { try await $0.list() }
            print(TextTable(
                headers: ["NAME", "ROLE", "PASSWORD", "TOTP", "STATE"],
                rows: accounts.map { [$0.name, $0.role.rawValue, $0.hasPassword ? "set" : "sso only", $0.hasTOTP ? "enrolled" : "-",
                                      $0.disabled ? "disabled" : "active"] }).render())
        }
    }

    /// `console require-totp on|off`.
    struct RequireTOTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "require-totp",
            abstract: "Require an authenticator code at every password sign-in (on), or only for enrolled accounts (off).",
            discussion: "Example: flexcharge-outbox console require-totp on")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "on or off.") var value: String

        func run() async throws {
            guard ["on", "off"].contains(value) else { throw CLIFailure.badInput("require-totp takes on or off, not \(value)") }
            try await ConsoleCommand.accounts(database, actor) { try await $0.setRequireTOTP(value == "on") }
            print("authenticator code \(value == "on" ? "required" : "not required") at sign-in")
        }
    }

    static func role(_ text: String) throws -> ConsoleRole {
        guard let role = ConsoleRole(rawValue: text) else { throw CLIFailure.badInput("--role must be viewer, operator or admin, not \(text)") }
        return role
    }

    /// One line from stdin, without its newline; empty is bad input. Never echoed or logged.
    static func passwordFromStdin() throws -> String {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw CLIFailure.badInput("give the password on stdin (one line), e.g. printf '%s\\n' \"$PASSWORD\" | flexcharge-outbox console user add ...")
        }
        return line
    }

    /// Runs `body` with the account store on one session, as `actor`; a refused change is one line, status 2.
    static func accounts<T>(_ database: DatabaseOptions, _ actor: ActorOption, _ body: (ConsoleAccounts) async throws -> T) async throws -> T {
        try await accounts(database, actor: actor.name, body)
    }

    /// The same, as the actor named `actor`, after ``requireConsoleRole(_:)``.
    static func accounts<T>(_ database: DatabaseOptions, actor: String, _ body: (ConsoleAccounts) async throws -> T) async throws -> T {
        try await database.withSession { session in
            try await requireConsoleRole(session)
            return try await accountCall { try await body(ConsoleAccounts(session: session, actor: actor)) }
        }
    }

    /// Refuses, in one line, a login that cannot read the console's accounts (an operator's, say): the console's
    /// user store belongs to flexcharge_console alone (migrations/0037).
    static func requireConsoleRole(_ session: PGSession) async throws {
        let allowed = try await session.query(
            "SELECT has_table_privilege('flexcharge.console_accounts', 'SELECT') AS allowed").first?.decode("allowed", as: Bool.self)
        guard allowed == true else {
            throw CLIFailure.failed(
                "this login may not use the console's accounts: run the console with a login in the flexcharge_console role "
                    + "(CREATE ROLE ... LOGIN IN ROLE flexcharge_console; see migrations/0037_console_role.sql)")
        }
    }

    /// Turns a refused account change into one line, status 2.
    static func accountCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as ConsoleAccountError { throw CLIFailure.badInput(error.description) }
    }
}
