import LibPQ

/// Server-side sessions (flexcharge.console_sessions). The browser's cookie holds a random 256-bit
/// token; the row holds its SHA-256, the session's CSRF token, the account and the expiry. A session
/// ends at `expires_at`, after the idle timeout, at sign-out, or when its account is disabled or its
/// password or TOTP changes.
struct ConsoleSessions: Sendable {
    static let cookieName = "fc_console_session"

    let session: PGSession

    /// What a valid cookie gives a request.
    struct Active: Sendable {
        let id: Int64
        let csrfToken: String
        let user: ConsoleUser
    }

    /// Starts a session for `accountID`; returns the cookie's token (shown nowhere else).
    func create(accountID: Int64, address: String, method: String, lifetime: Duration) async throws -> String {
        let token = Secrets.token()
        try await session.execute(
            """
            INSERT INTO flexcharge.console_sessions (token_hash, account_id, csrf_token, expires_at, address, method)
            VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)
            """, [PGBytes(Secrets.digest(token)), accountID, Secrets.token(), Self.seconds(lifetime), address, method])
        // Old rows go as new ones come (a sign-in is rare enough to carry this).
        try await session.execute("DELETE FROM flexcharge.console_sessions WHERE expires_at < now() - interval '1 day'")
        return token
    }

    /// The session of `token` if it is still valid (not expired, not idle too long, account enabled);
    /// marks it seen now.
    func active(token: String, idleTimeout: Duration) async throws -> Active? {
        guard !token.isEmpty, token.count <= 128 else { return nil }
        guard let row = try await session.query(
            """
            UPDATE flexcharge.console_sessions s SET last_seen_at = now()
              FROM flexcharge.console_accounts a
             WHERE s.token_hash = $1 AND a.id = s.account_id AND a.disabled_at IS NULL
               AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $2)
            RETURNING s.id, s.csrf_token, a.id AS account_id, a.name, a.role
            """, [PGBytes(Secrets.digest(token)), Self.seconds(idleTimeout)]).first
        else { return nil }
        guard let role = ConsoleRole(rawValue: try row.decode("role")) else { return nil }
        return Active(id: try row.decode("id"), csrfToken: try row.decode("csrf_token"),
                      user: ConsoleUser(id: try row.decode("account_id"), name: try row.decode("name"), role: role))
    }

    /// Ends one session (sign-out).
    func end(id: Int64) async throws {
        try await session.execute("DELETE FROM flexcharge.console_sessions WHERE id = $1", [id])
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
