@testable import FlexChargeAPI
import Foundation
import NIOHTTP1
import NIOSSL
import Testing
import TestSupport

/// The transport's https path against a real TLS server on loopback (`openssl s_server` with a throwaway
/// self-signed certificate for `localhost`): certificates are verified by default, and with the certificate
/// trusted the exchange goes through TLS. (`s_server -www` answers HTTP/1.0 without a length, which the client
/// refuses as malformed after reading the head: the 200 shows the request and answer crossed TLS.)
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
struct HTTP1TLSTests {
    @Test func certificatesAreVerifiedAndTrustedOnesWork() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cert = directory.appendingPathComponent("cert.pem").path, key = directory.appendingPathComponent("key.pem").path
        try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        let (server, port) = try await startServer(cert: cert, key: key)
        defer { server.terminate() }

        let exchange = HTTPExchange(method: .GET, url: "https://localhost:\(port)/", route: "GET /", headers: [:], body: nil)
        // Default configuration: the self-signed certificate is refused before anything is sent.
        let strict = HTTP1Transport(configuration: .init(connectTimeout: .seconds(10)))
        var refused: FlexChargeError?
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {  // the server may still be starting: a refused connect is retryable too, try again
            do {
                _ = try await exchange.perform(on: strict, timeout: .seconds(10))
            } catch {
                refused = error
            }
            if refused?.message.contains("TLS") == true { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        await strict.shutdown()
        let failure = try #require(refused)
        #expect(failure.failureClass == .retryable, "\(failure)")
        #expect(failure.message.contains("TLS"), "\(failure)")

        // Trusting that certificate: the request and the answer's head cross TLS.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(cert)
        let trusting = HTTP1Transport(configuration: .init(connectTimeout: .seconds(10), tls: tls))
        do {
            _ = try await exchange.perform(on: trusting, timeout: .seconds(10))
            Issue.record("s_server's HTTP/1.0 answer without a length should be refused")
        } catch {
            #expect(error.failureClass == .ambiguous, "\(error)")
            #expect(error.httpStatus == 200, "\(error)")
        }
        await trusting.shutdown()
    }

    /// `openssl s_server` on a free port, accepting connections when this returns. A port taken between
    /// its choice and s_server's bind makes s_server exit (CI failed so once, with a random port and
    /// every connection refused for 90 s): then another port is tried.
    private func startServer(cert: String, key: String) async throws -> (Process, Int) {
        for _ in 0..<5 {
            let port = try freeTCPPort()
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            server.arguments = ["s_server", "-accept", "\(port)", "-cert", cert, "-key", key, "-www", "-quiet"]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            let deadline = ContinuousClock.now + .seconds(20)
            while server.isRunning, ContinuousClock.now < deadline {
                if acceptsTCP(port: port) { return (server, port) }
                try await Task.sleep(for: .milliseconds(100))
            }
            server.terminate()
        }
        throw POSIXError(.EADDRINUSE)
    }

    private func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
