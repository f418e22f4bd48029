import Foundation
import LibPQ
import Testing
import TestSupport

/// The command lines of deploy/ (the Kubernetes Deployments' `args`, the systemd units' `ExecStart`
/// with their example environment files' extra options) run by the real binary: every option and value
/// is accepted, the process serves its probes with the secrets given as files the way the deploy files
/// give them, and on SIGTERM it exits 0 before the deploy file's kill deadline
/// (`terminationGracePeriodSeconds`, `TimeoutStopSec`). deploy/validate.py checks the names; this checks
/// that the program takes them. Only the listening addresses are changed (free loopback ports).
@Suite struct DeployArgumentsTests {
    enum Launch: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case kubernetesWorker, kubernetesServe, systemdWorker, systemdServe
        var testDescription: String { rawValue }
        var isServe: Bool { self == .kubernetesServe || self == .systemdServe }
    }

    static let deploy = PackagePaths.root + "/deploy"

    @Test(arguments: Launch.allCases)
    func theDeployCommandLineRunsServesItsProbesAndStopsInTime(_ launch: Launch) async throws {
        let (arguments, killAfter) = try Self.commandLine(launch)
        try await TestDatabase.with { db in
            let folder = NSTemporaryDirectory() + "flexcharge-deploy-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            // The secrets as files, as the deploy files mount them (a trailing newline, as `openssl` writes).
            let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            try (key + "\n").write(toFile: folder + "/credentials-key", atomically: true, encoding: .utf8)
            let secret = UUID().uuidString
            try (secret + "\n").write(toFile: folder + "/tokenize-secret", atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") && !$0.key.hasPrefix("FLEXCHARGE_") }
            environment["DATABASE_URL"] = db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY_FILE"] = folder + "/credentials-key"
            environment["FLEXCHARGE_TOKENIZE_SECRET_FILE"] = folder + "/tokenize-secret"

            let port = try freeTCPPort(), metricsPort = try freeTCPPort()
            let listen = launch.isServe
                ? ["--host", "127.0.0.1", "--port", String(port), "--metrics-host", "127.0.0.1", "--metrics-port", String(metricsPort)]
                : ["--http-host", "127.0.0.1", "--http-port", String(port)]
            let process = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), arguments + listen, environment: environment)
            // Ready: the worker's /readyz (database reached), serve's /healthz (its only probe).
            let probe = launch.isServe ? "/healthz" : "/readyz"
            let deadline = ContinuousClock.now + .seconds(60)
            var ready = false
            while !ready, process.isRunning, ContinuousClock.now < deadline {
                ready = LoopbackHTTP.request("GET", probe, port: port)?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(ready, "\(arguments.joined(separator: " ")): \(process.stderr)")
            #expect(LoopbackHTTP.request("GET", "/healthz", port: port)?.status == 200)
            if launch.isServe {
                // The tokenize secret was read from its file: a wrong bearer is refused (401), not
                // "not configured" (503); the right one gets past authentication (400 for this body).
                let wrong = LoopbackHTTP.request("POST", "/v1/tokenize", port: port, headers: ["Authorization": "Bearer not-the-secret"], body: "{}")
                #expect(wrong?.status == 401, "\(wrong?.body ?? "no answer")")
                let right = LoopbackHTTP.request("POST", "/v1/tokenize", port: port, headers: ["Authorization": "Bearer \(secret)"], body: "{}")
                #expect(right?.status == 400, "\(right?.body ?? "no answer")")
                // Its metrics port counts them.
                let metrics = LoopbackHTTP.request("GET", "/metrics", port: metricsPort)?.body ?? ""
                #expect(metrics.contains(#"flexcharge_outbox_serve_requests_total{route="tokenize",status="401"} 1"#), "\(metrics)")
            } else {
                #expect(LoopbackHTTP.request("GET", "/metrics", port: port)?.body.contains("flexcharge_outbox_in_flight") == true)
            }

            // SIGTERM: exit 0 before the platform would send SIGKILL.
            let stopped = ContinuousClock.now
            process.send(SIGTERM)
            while process.isRunning, ContinuousClock.now - stopped < .seconds(killAfter) {
                try await Task.sleep(for: .milliseconds(100))
            }
            let exited = !process.isRunning
            if !exited { process.send(SIGKILL) }
            let result = await process.wait()
            #expect(exited, "still running \(killAfter) s after SIGTERM")
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// The program's arguments (without the binary) and the seconds between SIGTERM and SIGKILL, as the
    /// deploy file gives them.
    static func commandLine(_ launch: Launch) throws -> ([String], Int) {
        switch launch {
        case .kubernetesWorker, .kubernetesServe:
            let file = deploy + "/kubernetes/" + (launch == .kubernetesWorker ? "worker" : "serve") + "-deployment.yaml"
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let grace = try #require(text.firstMatch(of: /terminationGracePeriodSeconds: (\d+)/).flatMap { Int($0.output.1) })
            return (try containerArguments(text), grace)
        case .systemdWorker, .systemdServe:
            let name = launch == .systemdWorker ? "worker" : "serve"
            let unit = try String(contentsOfFile: deploy + "/systemd/flexcharge-outbox-\(name).service", encoding: .utf8)
            let example = try String(contentsOfFile: deploy + "/systemd/\(name).env.example", encoding: .utf8)
            let variable = "FLEXCHARGE_\(name.uppercased())_ARGS"
            let extra = example.split(separator: "\n").first { $0.hasPrefix(variable + "=") }.map { String($0.dropFirst(variable.count + 1)) } ?? ""
            let start = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
            let words = start.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
            try #require(words.first == "/usr/bin/flexcharge-outbox", "\(start)")
            // systemd splits an unbraced $VARIABLE at spaces into separate arguments.
            let arguments = words.dropFirst().flatMap { $0 == "$" + variable ? extra.split(separator: " ").map(String.init) : [$0] }
            let stop = try #require(unit.firstMatch(of: /\nTimeoutStopSec=(\d+)\n/).flatMap { Int($0.output.1) })
            return (arguments, stop)
        }
    }

    /// The `args:` list of the manifest's container (one `- value` per line, comments skipped).
    static func containerArguments(_ manifest: String) throws -> [String] {
        var arguments: [String] = []
        var inside = false
        for line in manifest.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "args:" {
                inside = true
            } else if inside {
                if trimmed.hasPrefix("#") { continue }
                guard trimmed.hasPrefix("- ") else { break }
                arguments.append(String(trimmed.dropFirst(2)))
            }
        }
        try #require(!arguments.isEmpty, "no args: in the manifest")
        return arguments
    }
}
