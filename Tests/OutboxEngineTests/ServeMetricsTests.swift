import Foundation
import Testing
import TestSupport

/// `flexcharge-outbox serve --metrics-port`: the serve process counts its requests by route and status on a
/// port of its own, with labels no request text can multiply (the serve port faces the internet).
@Suite struct ServeMetricsTests {
    @Test(.timeLimit(.minutes(2))) func requestsAreCountedByRouteAndStatusAndMadeUpPathsAndMethodsAddNoLabels() async throws {
        try await TestDatabase.with { db in
            let port = try freeTCPPort(), metricsPort = try freeTCPPort()
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = db.url
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = WorkerHarness.keyBase64
            environment["FLEXCHARGE_TOKENIZE_SECRET"] = nil
            environment["FLEXCHARGE_TOKENIZE_SECRET_FILE"] = nil
            try await withChildProcess(
                PackagePaths.executable("flexcharge-outbox"), ["serve", "--port", "\(port)", "--metrics-port", "\(metricsPort)"],
                environment: environment
            ) { serve in
                let started = ContinuousClock.now
                while !(acceptsTCP(port: port) && acceptsTCP(port: metricsPort)) {
                    try #require(ContinuousClock.now - started < .seconds(60), "serve did not listen on both ports")
                    try await Task.sleep(for: .milliseconds(100))
                }
                // An unsigned webhook (401), a tokenize without the secret configured (503), a health check, and
                // requests whose paths and methods a client made up.
                let requests = [
                    "POST /webhooks/flexcharge?merchant=m1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
                    "POST /v1/tokenize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n{}",
                    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                    "GET /made-up-path-1 HTTP/1.1\r\nHost: x\r\n\r\n",
                    "BREW /made-up-path-2 HTTP/1.1\r\nHost: x\r\n\r\n",
                    "GET /webhooks/flexcharge HTTP/1.1\r\nHost: x\r\n\r\n",
                ]
                var statuses: [String] = []
                for text in requests {
                    let connection = try await RawConnection.open(port: port)
                    try await connection.send(text)
                    let answer = await connection.waitForResponse(timeout: .seconds(20)) ?? ""
                    statuses.append(String(answer.prefix(12).dropFirst(9)))
                    await connection.close()
                }
                print("ServeMetricsTests: statuses \(statuses)")
                #expect(statuses.prefix(3) == ["401", "503", "200"], "\(statuses)")

                let scrape = try await RawConnection.open(port: metricsPort)
                try await scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let metrics = await scrape.waitForResponse(timeout: .seconds(20)) ?? ""
                await scrape.close()
                let lines = metrics.split(separator: "\n").filter { $0.hasPrefix("flexcharge_outbox_serve_requests_total{") }
                print("ServeMetricsTests: \(lines)")
                for expected in [
                    #"flexcharge_outbox_serve_requests_total{route="webhook",status="401"} 1"#,
                    #"flexcharge_outbox_serve_requests_total{route="tokenize",status="503"} 1"#,
                    #"flexcharge_outbox_serve_requests_total{route="healthz",status="200"} 1"#,
                ] {
                    #expect(lines.contains { $0 == expected }, "no \(expected) in \(lines)")
                }
                // The made-up GETs fall under "other" (404); the made-up method is refused by the HTTP parser
                // (400) before any route, uncounted. Nothing of their text is a label.
                #expect(statuses.suffix(3) == ["404", "400", "404"], "\(statuses)")
                #expect(lines.contains { $0 == #"flexcharge_outbox_serve_requests_total{route="other",status="404"} 2"# }, "\(lines)")
                #expect(lines.count == 4, "\(lines)")
                #expect(!metrics.contains("made-up") && !metrics.contains("BREW"))
                #expect(metrics.contains("flexcharge_outbox_serve_request_duration_seconds"))
                // Every serve metric the alerts and the dashboard of deploy/ use is one serve exports.
                let exported = Set(metrics.split(separator: "\n").filter { $0.hasPrefix("flexcharge_outbox_serve_") }
                    .map { String($0.prefix { $0 != "{" && $0 != " " }) })
                for file in ["deploy/prometheus/flexcharge-outbox-rules.yml", "deploy/grafana/flexcharge-outbox.json"] {
                    let text = try String(contentsOfFile: PackagePaths.root + "/" + file, encoding: .utf8)
                    let used = Set(text.matches(of: /flexcharge_outbox_serve_[a-z_]+/).map { String($0.output) })
                    #expect(used.isSubset(of: exported), "\(file): \(used.subtracting(exported).sorted()) not in serve's /metrics")
                }
                _ = serve
            }
        }
    }
}
