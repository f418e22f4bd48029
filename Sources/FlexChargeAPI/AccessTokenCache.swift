import Foundation
import Synchronization

/// Bearer tokens per merchant credentials, with single-flight renewal.
///
/// A token is reused until `renewalMargin` before its `expires` instant. Concurrent callers that find no usable
/// token share one `/oauth2/token` request. A token reported as rejected (401) is dropped only if it is still the
/// cached one, so many callers failing with the same stale token trigger one renewal.
///
/// A lock, not an actor: every API call asks for its token, and the usual answer (a cached token)
/// needs no executor hop.
final class AccessTokenCache: Sendable {
    /// A bearer token and its expiry.
    struct Token: Sendable {
        var value: String
        var expires: Date
    }

    private enum Entry {
        case ready(Token)
        case pending(id: UInt64, Task<Token, any Error>)
    }

    private struct State {
        var entries: [MerchantCredentials: Entry] = [:]
        var nextRequestID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let renewalMargin: TimeInterval

    init(renewalMargin: Duration) {
        self.renewalMargin = Double(renewalMargin.components.seconds)
    }

    /// A usable token for `credentials`, fetching one with `fetch` if needed (one fetch at a time per credentials).
    func token(for credentials: MerchantCredentials, fetch: @escaping @Sendable () async throws -> Token) async throws -> Token {
        enum Next { case use(Token), join(Task<Token, any Error>), started(UInt64, Task<Token, any Error>) }
        let next: Next = state.withLock { state in
            switch state.entries[credentials] {
            case .ready(let token) where token.expires.timeIntervalSinceNow > renewalMargin:
                return .use(token)
            case .pending(_, let task):
                return .join(task)
            default:
                state.nextRequestID &+= 1
                let task = Task { try await fetch() }
                state.entries[credentials] = .pending(id: state.nextRequestID, task)
                return .started(state.nextRequestID, task)
            }
        }
        switch next {
        case .use(let token):
            return token
        case .join(let task):
            return try await task.value
        case .started(let id, let task):
            do {
                let token = try await task.value
                state.withLock { state in
                    if case .pending(id, _) = state.entries[credentials] { state.entries[credentials] = .ready(token) }
                }
                return token
            } catch {
                state.withLock { state in
                    if case .pending(id, _) = state.entries[credentials] { state.entries[credentials] = nil }
                }
                throw error
            }
        }
    }

    /// The longest a token is trusted, whatever its `expires` says (FlexCharge issues them for 10 minutes).
    static let maximumLifetime: TimeInterval = 3600

    /// The cache expiry for a token whose answer said `expires` (milliseconds since 1970): at most
    /// ``maximumLifetime`` from `now`, and a past or absurd value means "use once" (it expires at `now`).
    static func boundedExpiry(millisecondsSince1970 expires: Int64, now: Date) -> Date {
        let seconds = Double(expires) / 1000
        let latest = now.timeIntervalSince1970 + maximumLifetime
        return Date(timeIntervalSince1970: min(max(seconds, now.timeIntervalSince1970), latest))
    }

    /// Forgets `token` if it is still the cached token for `credentials` (it was rejected with a 401).
    func invalidate(_ token: Token, for credentials: MerchantCredentials) {
        state.withLock { state in
            if case .ready(let cached) = state.entries[credentials], cached.value == token.value {
                state.entries[credentials] = nil
            }
        }
    }
}
