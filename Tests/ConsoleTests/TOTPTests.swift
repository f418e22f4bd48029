import Foundation
import LibPQ
import OutboxConsole
import Testing

/// The second factor: an enrolled account needs its authenticator's code, a code works once, and an
/// admin can require a code of everyone.
@Suite struct TOTPTests {
    /// The secret inside an `otpauth://` URI, decoded from base32 (what an authenticator app does).
    static func secret(of uri: String) throws -> String {
        let components = try #require(URLComponents(string: uri))
        let base32 = try #require(components.queryItems?.first { $0.name == "secret" }?.value)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits = 0, value = 0
        var bytes: [UInt8] = []
        for character in base32 {
            guard let index = alphabet.firstIndex(of: character) else { continue }
            value = (value << 5) | index
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8((value >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func anEnrolledAccountNeedsItsAuthenticatorCodeOnce() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("alice", role: .operator)
            let uri = try await console.withDatabase { try await ConsoleAccounts(session: $0, actor: "test").enrolTOTP("alice") }
            #expect(uri.hasPrefix("otpauth://totp/"))
            #expect(uri.contains("issuer=FlexCharge"))
            let secret = try Self.secret(of: uri)
            let browser = console.browser()
            // The password alone asks for the code.
            let ask = try await browser.signIn("alice")
            #expect(ask.status == 401)
            #expect(ask.body.contains("Enter the 6-digit code"))
            #expect(browser.cookies["fc_console_session"] == nil)
            // A wrong code is refused.
            let now = TOTPCheck.code(secret: secret)
            let wrong = String(format: "%06d", (Int(now)! + 1) % 1_000_000)
            #expect(try await browser.signIn("alice", code: wrong).status == 401)
            // The app's code signs in.
            let ok = try await browser.signIn("alice", code: now)
            #expect(ok.status == 303)
            #expect(browser.cookies["fc_console_session"] != nil)
            // The same code again (a replay) is refused.
            let other = console.browser()
            #expect(try await other.signIn("alice", code: now).status == 401)
            let method = try await console.withDatabase {
                try await $0.query("SELECT method FROM flexcharge.console_sessions").first!.decode("method", as: String.self)
            }
            #expect(method == "password+totp")
        }
    }

    @Test func anAdminCanRequireACodeOfEveryone() async throws {
        try await RunningConsole.with { console in
            try await console.addAccount("root", role: .admin)
            try await console.addAccount("bob", role: .viewer)
            let admin = console.browser()
            try await admin.signIn("root")
            let page = try await admin.get("/accounts")
            #expect(page.status == 200)
            let set = try await admin.post("/accounts/require-totp", form: [("csrf", try await admin.csrfToken()), ("required", "true")])
            #expect(set.status == 303)
            // bob has no authenticator: he is told to ask an admin, and not signed in.
            let bob = console.browser()
            let refused = try await bob.signIn("bob")
            #expect(refused.status == 403)
            #expect(refused.body.contains("console user totp bob"))
            #expect(bob.cookies["fc_console_session"] == nil)
            // Once enrolled, bob signs in with his code.
            let uri = try await console.withDatabase { try await ConsoleAccounts(session: $0, actor: "test").enrolTOTP("bob") }
            #expect(try await bob.signIn("bob", code: TOTPCheck.code(secret: try Self.secret(of: uri))).status == 303)
            let audit = try await console.withDatabase {
                try await $0.query("SELECT actor, new_value FROM flexcharge.console_audit WHERE action = 'require_totp'").rows
            }
            #expect(try audit.map { try $0.decode("actor", as: String.self) } == ["console:root"])
            #expect(try audit.first?.decode("new_value", as: String.self) == "true")
        }
    }
}
