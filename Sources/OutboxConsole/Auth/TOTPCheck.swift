import Foundation
import HummingbirdOTP

/// The second factor: RFC 6238 TOTP (SHA-1, 6 digits, 30-second steps; what authenticator apps use)
/// through hummingbird-auth's `TOTP`. A code is accepted for the current step and one step either
/// side (clock drift), and never for a step at or before the last one accepted (no replay).
public enum TOTPCheck {
    public static let issuer = "FlexCharge Outbox"
    static let timeStep = 30

    /// A new shared secret: 20 random characters (the authenticator URI carries them base32-encoded).
    public static func newSecret() -> String { String(Secrets.token(bytes: 15).prefix(20)) }

    /// The `otpauth://` URI to enter in (or show as a QR code to) an authenticator app.
    public static func enrolmentURI(secret: String, account: String) -> String {
        TOTP(secret: secret).createAuthenticatorURL(label: "\(issuer):\(account)", issuer: issuer)
    }

    /// The code of `date` (tests compute one the way an app does).
    public static func code(secret: String, at date: Date = Date()) -> String {
        let value = TOTP(secret: secret, timeStep: timeStep).compute(date: date)
        let digits = String(value)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The step `code` belongs to if it is valid now (±1 step) and later than `lastStep`; nil otherwise.
    static func acceptedStep(code: String, secret: String, lastStep: Int64?, now: Date = Date()) -> Int64? {
        let typed = code.filter { !$0.isWhitespace }
        guard typed.count == 6, typed.allSatisfy(\.isASCII), typed.allSatisfy(\.isNumber) else { return nil }
        let current = Int64(now.timeIntervalSince1970) / Int64(timeStep)
        for step in [current - 1, current, current + 1] {
            if let lastStep, step <= lastStep { continue }
            let date = Date(timeIntervalSince1970: TimeInterval(step * Int64(timeStep)))
            if Secrets.equal(Self.code(secret: secret, at: date), typed) { return step }
        }
        return nil
    }
}
