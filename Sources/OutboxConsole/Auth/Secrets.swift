import Crypto
import Foundation

/// Random tokens and their comparison: session tokens, CSRF tokens, CSP nonces, TOTP secrets.
enum Secrets {
    /// `bytes` random bytes (the system's CSPRNG) as base64url without padding: safe in a cookie, a
    /// header and an HTML attribute.
    static func token(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// SHA-256 of a token: what the database keeps instead of the token.
    static func digest(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Data(token.utf8))) }

    /// Compares through HMACs with a fresh key, so the time taken says nothing about where they differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let key = SymmetricKey(size: .bits256)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(a.utf8), using: key)
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(b.utf8), using: key)
    }
}

/// The CSRF rule: every POST carries the session's token in the form field `csrf` (or the header
/// `X-CSRF-Token` for a script's request); anything else is refused with 403 before a handler runs.
/// The sign-in form, which has no session yet, uses a double-submit token: a cookie and the same value
/// in the form.
enum CSRF {
    static let fieldName = "csrf"
    static let headerName = "X-CSRF-Token"
    static let signInCookie = "fc_console_signin"

    static func matches(presented: String?, expected: String) -> Bool {
        guard let presented, !presented.isEmpty, !expected.isEmpty else { return false }
        return Secrets.equal(presented, expected)
    }
}
