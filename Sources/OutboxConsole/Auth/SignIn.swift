import Foundation
import LibPQ

/// The password sign-in, in one place: throttle, check the password (bcrypt), check the TOTP code when
/// the account has a secret or the console requires one, then start a session. Failures are counted
/// per account name and per client address (flexcharge.console_signin_failures); over the limit every
/// attempt is refused before the password is looked at, until the window has passed.
struct SignIn: Sendable {
    let session: PGSession
    let throttle: SignInThrottle
    let sessionLifetime: Duration

    enum Outcome: Sendable, Equatable {
        /// Signed in: the cookie's token.
        case signedIn(token: String)
        /// Name or password (or code) wrong: one message for all, so it does not say which.
        case refused
        /// The password was right and the account needs a code: ask for it.
        case needsCode
        /// TOTP is required and the account has no secret: an admin must enrol it.
        case needsEnrolment
        /// Too many failures: try again after this many seconds.
        case throttled(retryAfter: Int)
    }

    func attempt(name rawName: String, password: String, code: String?, address: String) async throws -> Outcome {
        let name = String(rawName.trimmingCharacters(in: .whitespaces).prefix(64))
        if let wait = try await throttled(name: name, address: address) { return .throttled(retryAfter: wait) }
        let account = try await session.query(
            """
            SELECT id, password_hash, totp_secret, totp_last_step, (SELECT require_totp FROM flexcharge.console_settings) AS require_totp
              FROM flexcharge.console_accounts WHERE name = $1 AND disabled_at IS NULL
            """, [name]).first
        let hash: String? = try account?.decode("password_hash")
        guard try await PasswordHashing.verify(password, hash: hash), let account else {
            try await recordFailure(name: name, address: address)
            return .refused
        }
        let id: Int64 = try account.decode("id")
        let secret: String? = try account.decode("totp_secret")
        let required: Bool = try account.decode("require_totp")
        let method: String
        if let secret {
            guard let code, !code.isEmpty else { return .needsCode }
            let lastStep: Int64? = try account.decode("totp_last_step")
            guard let step = TOTPCheck.acceptedStep(code: code, secret: secret, lastStep: lastStep) else {
                try await recordFailure(name: name, address: address)
                return .refused
            }
            // Only the first sign-in with this step's code wins (a replayed code finds the step taken).
            let taken = try await session.execute(
                "UPDATE flexcharge.console_accounts SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                [id, step])
            guard taken == 1 else {
                try await recordFailure(name: name, address: address)
                return .refused
            }
            method = "password+totp"
        } else if required {
            return .needsEnrolment
        } else {
            method = "password"
        }
        try await session.execute("DELETE FROM flexcharge.console_signin_failures WHERE account_name = $1", [name])
        let token = try await ConsoleSessions(session: session).create(
            accountID: id, address: address, method: method, lifetime: sessionLifetime)
        try await session.withTransaction { tx in
            try ConsoleAccounts.audit(tx, actor: "console:\(name)", action: "sign-in", subject: name, old: nil, new: "\(method) from \(address)")
        }
        return .signedIn(token: token)
    }

    /// Seconds until an attempt may be made, when the account or the address is over its limit.
    private func throttled(name: String, address: String) async throws -> Int? {
        guard let row = try await session.query(
            """
            SELECT count(*) FILTER (WHERE account_name = $1) AS by_account,
                   count(*) FILTER (WHERE address = $2) AS by_address,
                   ceil(extract(epoch FROM min(at) + make_interval(secs => $3) - now()))::bigint AS wait
              FROM flexcharge.console_signin_failures
             WHERE at > now() - make_interval(secs => $3) AND (account_name = $1 OR address = $2)
            """, [name, address, ConsoleSessions.seconds(throttle.window)]).first
        else { return nil }
        let byAccount: Int = try row.decode("by_account"), byAddress: Int = try row.decode("by_address")
        guard byAccount >= throttle.perAccount || byAddress >= throttle.perAddress else { return nil }
        return max(1, try row.decode("wait", as: Int?.self) ?? 1)
    }

    private func recordFailure(name: String, address: String) async throws {
        try await session.execute(
            "INSERT INTO flexcharge.console_signin_failures (account_name, address) VALUES ($1, $2)", [name, address])
        try await session.execute("DELETE FROM flexcharge.console_signin_failures WHERE at < now() - interval '1 day'")
    }
}
