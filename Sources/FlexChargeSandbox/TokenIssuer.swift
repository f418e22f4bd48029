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

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
