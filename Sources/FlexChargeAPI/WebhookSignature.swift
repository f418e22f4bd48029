import Crypto
import Foundation

/// The `x-fc-*` HMAC-SHA512 webhook signature scheme of FlexCharge (contract §6.7).
///
/// `stringToSign = "POST\n" + nonce + ";" + date + ";" + host + ";" + base64(SHA512(body))`, signed with
/// `HMAC-SHA512(base64decode(subscriberKey))`, sent as
/// `x-fc-authorization: HMAC-SHA512 SignedHeaders=x-fc-nonce;x-fc-date;host;x-fc-content-sha512&Signature=<base64>`.
public enum WebhookSignature {
    /// The headers that carry a signature for one delivery.
    public struct Headers: Sendable, Hashable {
        public var authorization: String
        public var contentSHA512: String
        public var date: String
        public var nonce: String
    }

    /// Signs `body` for delivery to `host` (as the receiver sees its `Host` header).
    public static func sign(body: [UInt8], host: String, date: String, nonce: String, subscriberKey: String) -> Headers? {
        guard let key = Data(base64Encoded: subscriberKey) else { return nil }
        let contentHash = Data(SHA512.hash(data: body)).base64EncodedString()
        let signature = mac(key: key, nonce: nonce, date: date, host: host, contentHash: contentHash)
        return Headers(
            authorization: "HMAC-SHA512 SignedHeaders=x-fc-nonce;x-fc-date;host;x-fc-content-sha512&Signature=\(signature)",
            contentSHA512: contentHash, date: date, nonce: nonce)
    }

    /// Verifies a received delivery in constant time; `authorization` is the `x-fc-authorization` header.
    public static func verify(body: [UInt8], host: String, date: String, nonce: String, authorization: String,
                              subscriberKey: String) -> Bool {
        guard let key = Data(base64Encoded: subscriberKey),
              let range = authorization.range(of: "Signature="),
              let received = Data(base64Encoded: String(authorization[range.upperBound...])) else { return false }
        let contentHash = Data(SHA512.hash(data: body)).base64EncodedString()
        let message = stringToSign(nonce: nonce, date: date, host: host, contentHash: contentHash)
        return HMAC<SHA512>.isValidAuthenticationCode(received, authenticating: Data(message.utf8),
                                                      using: SymmetricKey(data: key))
    }

    private static func mac(key: Data, nonce: String, date: String, host: String, contentHash: String) -> String {
        let message = stringToSign(nonce: nonce, date: date, host: host, contentHash: contentHash)
        let code = HMAC<SHA512>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: key))
        return Data(code).base64EncodedString()
    }

    private static func stringToSign(nonce: String, date: String, host: String, contentHash: String) -> String {
        "POST\n\(nonce);\(date);\(host);\(contentHash)"
    }
}
