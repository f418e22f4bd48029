import Crypto
import Foundation

/// Issues JWT-shaped bearer tokens (HS256 over a per-process key) carrying the merchant's mid.
struct TokenIssuer: Sendable {
    private let keyBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }

    /// A new token for `mid`, valid from `now` for `ttl` seconds.
    func issue(mid: String, clientId: String, now: Date, ttl: TimeInterval) -> String {
        let issued = Int(now.timeIntervalSince1970)
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let payload = #"{"sub":"\#(clientId)","unique_name":"\#(clientId)","jti":"\#(UUID().uuidString.lowercased())","#
            + #""iat":"\#(issued * 1000)","aud":["payments","orders","merchants","eligibility"],"#
            + #""custom:mid":"\#(mid)","nbf":\#(issued),"exp":\#(issued + Int(ttl)),"iss":"Api-Client-Service"}"#
        let signingInput = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(Data(payload.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: keyBytes))
        return signingInput + "." + Self.base64URL(Data(signature))
    }

    /// The API client id of an app key: the token answer's `id` and the JWT's `sub` and `unique_name`. FlexCharge
    /// issues one per API key, distinct from the merchant's MID (flexcharge-api.md §2.3: "Identity of the API
    /// client"); here a stable UUID-shaped digest of the key, so the MID never appears there.
    static func clientId(appKey: String) -> String {
        var bytes = Array(SHA256.hash(data: Data("flexcharge-sandbox api client|\(appKey)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50  // version 5 (name-based)
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(hex[hex.index(hex.startIndex, offsetBy: range.lowerBound)..<hex.index(hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
