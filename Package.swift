// swift-tools-version:6.2
//
// FlexCharge Outbox: a PostgreSQL outbox that a payment gateway writes into inside its own
// transactions, and Swift workers that deliver those events to the FlexCharge API.
//
// The targets are the architecture, bottom to top:
//   CLibPQ            system library: the C API of libpq (Debian `libpq-dev`)
//   LibPQ             the PostgreSQL layer: connections on dedicated threads, pool, LISTEN, migrations
//   FlexChargeAPI     the FlexCharge HTTP client: models, token cache, failure classification
//   FlexChargeSandbox the sandbox simulator of the FlexCharge API (a Hummingbird application)
//   OutboxEngine      the outbox worker: claim, lease, call, record, routing, retries (no HTTP server, no
//                     metrics backend: a Swift gateway can embed it)
//   OutboxServers     the HTTP servers of the two processes (Hummingbird): `serve`'s webhooks and tokenize
//                     endpoint, the worker's /healthz, /readyz and /metrics
//   OutboxConsole     the ops console (Hummingbird): web pages over the same engine code paths as the CLI,
//                     with its own accounts, sessions, CSRF and TOTP (hummingbird-auth)
//   OutboxCLI         `flexcharge-outbox`, the operator's tool and the worker process; it alone chooses the
//                     metrics backend (Prometheus), as swift-metrics asks of executables
//   SandboxServer     `flexcharge-sandbox`, the simulator's command line
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The products of the package dependencies, by name.
extension Target.Dependency {
    static let logging = product(name: "Logging", package: "swift-log")
    static let metrics = product(name: "Metrics", package: "swift-metrics")
    static let prometheus = product(name: "Prometheus", package: "swift-prometheus")
    static let crypto = product(name: "Crypto", package: "swift-crypto")
    static let nioCore = product(name: "NIOCore", package: "swift-nio")
    static let nioHTTP1 = product(name: "NIOHTTP1", package: "swift-nio")
    static let nioPosix = product(name: "NIOPosix", package: "swift-nio")
    static let nioSSL = product(name: "NIOSSL", package: "swift-nio-ssl")
    static let asyncHTTPClient = product(name: "AsyncHTTPClient", package: "async-http-client")
    static let serviceLifecycle = product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
    static let unixSignals = product(name: "UnixSignals", package: "swift-service-lifecycle")
    static let argumentParser = product(name: "ArgumentParser", package: "swift-argument-parser")
    static let hummingbird = product(name: "Hummingbird", package: "hummingbird")
    static let hummingbirdAuth = product(name: "HummingbirdAuth", package: "hummingbird-auth")
    static let hummingbirdBcrypt = product(name: "HummingbirdBcrypt", package: "hummingbird-auth")
    static let hummingbirdOTP = product(name: "HummingbirdOTP", package: "hummingbird-auth")
}

let package = Package(
    name: "flexcharge-outbox",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flexcharge-outbox", targets: ["OutboxCLI"]),
        .executable(name: "flexcharge-sandbox", targets: ["SandboxServer"]),
        .library(name: "LibPQ", targets: ["LibPQ"]),
        .library(name: "FlexChargeAPI", targets: ["FlexChargeAPI"]),
        .library(name: "FlexChargeSandbox", targets: ["FlexChargeSandbox"]),
        .library(name: "OutboxEngine", targets: ["OutboxEngine"]),
        .library(name: "OutboxServers", targets: ["OutboxServers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "LibPQ",
            dependencies: ["CLibPQ", .logging],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FlexChargeAPI",
            dependencies: [.nioCore, .nioHTTP1, .nioPosix, .nioSSL, .logging, .crypto],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FlexChargeSandbox",
            dependencies: ["FlexChargeAPI", .serviceLifecycle, .hummingbird, .asyncHTTPClient, .crypto, .logging],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OutboxEngine",
            dependencies: [
                "LibPQ", "FlexChargeAPI", .nioCore, .logging, .metrics, .serviceLifecycle, .crypto,
            ],
            swiftSettings: swiftSettings
        ),
        // Read deadline, idle timeout and header bounds for every HTTP server a client outside the process reaches.
        .target(
            name: "HTTPServerGuards",
            dependencies: [.hummingbird, .nioCore, .logging],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OutboxServers",
            dependencies: ["LibPQ", "FlexChargeAPI", "OutboxEngine", "HTTPServerGuards", .hummingbird, .nioCore, .logging, .metrics, .crypto],
            swiftSettings: swiftSettings
        ),
        // The ops console: pages register through ConsoleArea (Sources/OutboxConsole/Core/ConsoleArea.swift).
        .target(
            name: "OutboxConsole",
            dependencies: [
                "LibPQ", "OutboxEngine", "FlexChargeAPI", "HTTPServerGuards", .hummingbird, .hummingbirdAuth, .hummingbirdBcrypt, .hummingbirdOTP,
                .nioCore, .logging, .crypto,
            ],
            swiftSettings: swiftSettings
        ),
        // The SQL of migrations/ built into the binary (`migrate` needs no files at run time): the
        // EmbedMigrations build-tool plugin runs MigrationsEmbedder to turn each file into a literal.
        .executableTarget(name: "MigrationsEmbedder", swiftSettings: swiftSettings),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["MigrationsEmbedder"],
            path: "Sources/EmbedMigrationsPlugin"
        ),
        .target(
            name: "OutboxMigrations",
            dependencies: ["LibPQ"],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        .executableTarget(
            name: "OutboxCLI",
            dependencies: [
                "LibPQ", "OutboxMigrations", "OutboxEngine", "OutboxServers", "OutboxConsole", "FlexChargeAPI", .metrics, .prometheus,
                .argumentParser, .logging, .serviceLifecycle, .unixSignals, .nioPosix,
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SandboxServer",
            dependencies: ["FlexChargeSandbox", .argumentParser, .hummingbird, .logging, .nioPosix],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets only: throwaway PostgreSQL clusters, per-test databases.
        .target(
            name: "TestSupport",
            dependencies: ["LibPQ", .logging, .nioCore, .nioPosix],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LibPQTests",
            dependencies: ["LibPQ", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FlexChargeAPITests",
            dependencies: [
                "FlexChargeAPI", "FlexChargeSandbox", "TestSupport", .crypto, .asyncHTTPClient, .logging, .nioCore, .nioHTTP1,
                .nioPosix, .nioSSL,
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OutboxEngineTests",
            dependencies: [
                "OutboxEngine", "OutboxServers", "LibPQ", "FlexChargeAPI", "FlexChargeSandbox", "TestSupport",
                .asyncHTTPClient, .nioCore, .nioHTTP1,
            ],
            swiftSettings: swiftSettings
        ),
        // The database's trust boundary: the insert guard (PAN, credentials, worker-owned columns)
        // and the roles of migrations/0012_roles.sql, against a real PostgreSQL.
        .testTarget(
            name: "SchemaTests",
            dependencies: ["LibPQ", "TestSupport", "OutboxEngine"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OutboxCLITests",
            dependencies: ["LibPQ", "TestSupport", "OutboxMigrations"],
            swiftSettings: swiftSettings
        ),
        // The console's sign-in, sessions, CSRF, roles and TOTP over real HTTP and a real PostgreSQL.
        .testTarget(
            name: "ConsoleTests",
            dependencies: [
                "OutboxConsole", "OutboxEngine", "LibPQ", "TestSupport", .hummingbird, .hummingbirdOTP, .asyncHTTPClient,
                .nioCore, .nioHTTP1, .logging, .serviceLifecycle,
            ],
            swiftSettings: swiftSettings
        ),
        // The console in headless Chromium (Debian's chromium and chromium-driver, W3C WebDriver): the
        // built binaries run as processes (console, worker, simulator), so this imports no console code.
        .testTarget(
            name: "ConsoleBrowserTests",
            dependencies: ["LibPQ", "TestSupport", .asyncHTTPClient, .nioCore, .nioHTTP1],
            swiftSettings: swiftSettings
        ),
    ]
)
