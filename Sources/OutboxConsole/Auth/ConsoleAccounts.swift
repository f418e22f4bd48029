import Foundation
import LibPQ

/// Console accounts and settings in the database (migrations/0023_console.sql): what
/// `flexcharge-outbox console user …` and the admin pages do. Every change is written to
/// flexcharge.console_audit under `actor` in the same transaction; no password, hash or secret is
/// ever written there or returned in an error.
public struct ConsoleAccounts: Sendable {
    public let session: PGSession
    public let actor: String

    public init(session: PGSession, actor: String) {
        self.session = session
        self.actor = actor
    }

    /// One account as listed (no hash, no secret).
    public struct Account: Sendable, Equatable {
        public let id: Int64
        public let name: String
        public let role: ConsoleRole
        public let hasPassword: Bool
        public let hasTOTP: Bool
        public let disabled: Bool
        public let createdAt: Date
        public let createdBy: String
    }

    /// Checks a new account name: what 0023's CHECK allows, with a readable refusal.
    public static func validName(_ name: String) -> Bool {
        (1...64).contains(name.count)
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._@-".unicodeScalars.contains($0)) }
    }

    /// Creates an account. `password` nil makes an SSO-only account. Refuses a taken name, a bad name
    /// and a password shorter than ``PasswordHashing/minimumLength``.
    public func add(_ name: String, role: ConsoleRole, password: String?, cost: UInt8 = PasswordHashing.defaultCost) async throws {
        guard Self.validName(name) else {
            throw ConsoleAccountError("account names are 1 to 64 letters, digits or . _ @ -")
        }
        let hash: String? = if let password {
            try await PasswordHashing.hash(try Self.checked(password), cost: cost)
        } else { nil }
        let actor = self.actor
        try await session.withTransaction { tx in
            guard try tx.query("SELECT 1 FROM flexcharge.console_accounts WHERE name = $1", [name]).rows.isEmpty else {
                throw ConsoleAccountError("account \(name) exists")
            }
            try tx.execute(
                "INSERT INTO flexcharge.console_accounts (name, role, password_hash, created_by) VALUES ($1, $2, $3, $4)",
                [name, role.rawValue, hash, actor])
            try Self.audit(tx, actor: actor, action: "add", subject: name, old: nil,
                           new: "role \(role.rawValue)" + (hash == nil ? ", SSO only" : ", password set"))
        }
    }

    /// Replaces an account's password (and ends its sessions).
    public func setPassword(_ name: String, password: String, cost: UInt8 = PasswordHashing.defaultCost) async throws {
        let hash = try await PasswordHashing.hash(try Self.checked(password), cost: cost)
        let actor = self.actor
        try await session.withTransaction { tx in
            let id = try Self.id(tx, name)
            try tx.execute("UPDATE flexcharge.console_accounts SET password_hash = $2, updated_at = now() WHERE id = $1", [id, hash])
            try tx.execute("DELETE FROM flexcharge.console_sessions WHERE account_id = $1", [id])
            try Self.audit(tx, actor: actor, action: "password", subject: name, old: nil, new: "changed")
        }
    }

    /// Changes an account's role (its open sessions see the new role at their next request).
    public func setRole(_ name: String, role: ConsoleRole) async throws {
        let actor = self.actor
        try await session.withTransaction { tx in
            guard let row = try tx.query("SELECT role FROM flexcharge.console_accounts WHERE name = $1 FOR UPDATE", [name]).first else {
                throw ConsoleAccountError("no account \(name)")
            }
            let old: String = try row.decode("role")
            guard old != role.rawValue else { return }
            try tx.execute("UPDATE flexcharge.console_accounts SET role = $2, updated_at = now() WHERE name = $1", [name, role.rawValue])
            try Self.audit(tx, actor: actor, action: "set role", subject: name, old: old, new: role.rawValue)
        }
    }

    /// Disables (true) or enables an account; disabling ends its sessions.
    public func setDisabled(_ name: String, _ disabled: Bool) async throws {
        let actor = self.actor
        try await session.withTransaction { tx in
            let id = try Self.id(tx, name)
            try tx.execute(
                "UPDATE flexcharge.console_accounts SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END, updated_at = now() WHERE id = $1",
                [id, disabled])
            if disabled { try tx.execute("DELETE FROM flexcharge.console_sessions WHERE account_id = $1", [id]) }
            try Self.audit(tx, actor: actor, action: disabled ? "disable" : "enable", subject: name, old: nil, new: nil)
        }
    }

    /// Gives an account a new TOTP secret and returns the `otpauth://` URI for its authenticator app.
    /// From now on its password sign-in needs a code. Its sessions end (they were made without it).
    public func enrolTOTP(_ name: String) async throws -> String {
        let secret = TOTPCheck.newSecret()
        let actor = self.actor
        try await session.withTransaction { tx in
            let id = try Self.id(tx, name)
            try tx.execute(
                "UPDATE flexcharge.console_accounts SET totp_secret = $2, totp_last_step = NULL, updated_at = now() WHERE id = $1",
                [id, secret])
            try tx.execute("DELETE FROM flexcharge.console_sessions WHERE account_id = $1", [id])
            try Self.audit(tx, actor: actor, action: "totp", subject: name, old: nil, new: "enrolled")
        }
        return TOTPCheck.enrolmentURI(secret: secret, account: name)
    }

    /// Removes an account's TOTP secret (a lost phone); refused while TOTP is required for everyone.
    public func removeTOTP(_ name: String) async throws {
        let actor = self.actor
        try await session.withTransaction { tx in
            let id = try Self.id(tx, name)
            try tx.execute(
                "UPDATE flexcharge.console_accounts SET totp_secret = NULL, totp_last_step = NULL, updated_at = now() WHERE id = $1", [id])
            try Self.audit(tx, actor: actor, action: "totp", subject: name, old: nil, new: "removed")
        }
    }

    public func list() async throws -> [Account] {
        try await session.query(
            """
            SELECT id, name, role, password_hash IS NOT NULL AS has_password, totp_secret IS NOT NULL AS has_totp,
                   disabled_at IS NOT NULL AS disabled, created_at, created_by
              FROM flexcharge.console_accounts ORDER BY name
            """
        ).rows.map { row in
            Account(id: try row.decode("id"), name: try row.decode("name"),
                    role: ConsoleRole(rawValue: try row.decode("role")) ?? .viewer,
                    hasPassword: try row.decode("has_password"), hasTOTP: try row.decode("has_totp"),
                    disabled: try row.decode("disabled"), createdAt: try row.decode("created_at"),
                    createdBy: try row.decode("created_by"))
        }
    }

    /// Whether a password sign-in needs a TOTP code for every account (an admin's setting).
    public func requireTOTP() async throws -> Bool {
        try await session.query("SELECT require_totp FROM flexcharge.console_settings").first?.decode("require_totp") ?? false
    }

    public func setRequireTOTP(_ required: Bool) async throws {
        let actor = self.actor
        try await session.withTransaction { tx in
            let old: Bool = try tx.query("SELECT require_totp FROM flexcharge.console_settings FOR UPDATE").first?.decode("require_totp") ?? false
            guard old != required else { return }
            try tx.execute("UPDATE flexcharge.console_settings SET require_totp = $1, updated_at = now(), updated_by = $2", [required, actor])
            try Self.audit(tx, actor: actor, action: "require_totp", subject: "settings", old: String(old), new: String(required))
        }
    }

    /// The latest console audit rows (accounts, settings, sign-ins), newest first.
    public func audit(limit: Int = 100) async throws -> [(at: Date, actor: String, action: String, subject: String, old: String?, new: String?)] {
        try await session.query(
            "SELECT at, actor, action, subject, old_value, new_value FROM flexcharge.console_audit ORDER BY id DESC LIMIT $1", [limit]
        ).rows.map { row in
            (try row.decode("at"), try row.decode("actor"), try row.decode("action"), try row.decode("subject"),
             try row.decode("old_value"), try row.decode("new_value"))
        }
    }

    static func audit(_ tx: isolated PGSession, actor: String, action: String, subject: String, old: String?, new: String?) throws {
        try tx.execute(
            "INSERT INTO flexcharge.console_audit (actor, action, subject, old_value, new_value) VALUES ($1, $2, $3, $4, $5)",
            [actor, action, subject, old, new])
    }

    private static func id(_ tx: isolated PGSession, _ name: String) throws -> Int64 {
        guard let row = try tx.query("SELECT id FROM flexcharge.console_accounts WHERE name = $1 FOR UPDATE", [name]).first else {
            throw ConsoleAccountError("no account \(name)")
        }
        return try row.decode("id")
    }

    private static func checked(_ password: String) throws -> String {
        guard password.count >= PasswordHashing.minimumLength else {
            throw ConsoleAccountError("a console password has at least \(PasswordHashing.minimumLength) characters")
        }
        guard password.utf8.count <= 72 else {
            // bcrypt reads at most 72 bytes: a longer password would be cut without a word.
            throw ConsoleAccountError("a console password has at most 72 bytes (bcrypt's limit)")
        }
        return password
    }
}

/// A refused account change; the message says why (never a password or secret).
public struct ConsoleAccountError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
