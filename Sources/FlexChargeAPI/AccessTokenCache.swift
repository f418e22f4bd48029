import Foundation

/// Bearer tokens per merchant credentials, with single-flight renewal.
///
/// A token is reused until `renewalMargin` before its `expires` instant. Concurrent callers that find no usable
/// token share one `/oauth2/token` request. A token reported as rejected (401) is dropped only if it is still the
/// cached one, so many callers failing with the same stale token trigger one renewal.
actor AccessTokenCache {
    /// A bearer token and its expiry.
    struct Token: Sendable {
        var value: String
        var expires: Date
    }

    private enum Entry {
        case ready(Token)
        case pending(id: UInt64, Task<Token, any Error>)
    }

    private var entries: [MerchantCredentials: Entry] = [:]
    private var nextRequestID: UInt64 = 0
    private let renewalMargin: TimeInterval

    init(renewalMargin: Duration) {
        self.renewalMargin = Double(renewalMargin.components.seconds)
    }

    /// A usable token for `credentials`, fetching one with `fetch` if needed (one fetch at a time per credentials).
    func token(for credentials: MerchantCredentials, fetch: @escaping @Sendable () async throws -> Token) async throws -> Token {
        switch entries[credentials] {
        case .ready(let token) where token.expires.timeIntervalSinceNow > renewalMargin:
            return token
        case .pending(_, let task):
            return try await task.value
        default:
            nextRequestID &+= 1
            let id = nextRequestID
            let task = Task { try await fetch() }
            entries[credentials] = .pending(id: id, task)
            do {
                let token = try await task.value
                if case .pending(id, _) = entries[credentials] { entries[credentials] = .ready(token) }
                return token
            } catch {
                if case .pending(id, _) = entries[credentials] { entries[credentials] = nil }
                throw error
            }
        }
    }

    /// Forgets `token` if it is still the cached token for `credentials` (it was rejected with a 401).
    func invalidate(_ token: Token, for credentials: MerchantCredentials) {
        if case .ready(let cached) = entries[credentials], cached.value == token.value {
            entries[credentials] = nil
        }
    }
}
