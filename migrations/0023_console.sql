-- 0023_console.sql
--
-- The ops console's accounts, sessions and sign-in throttling (`flexcharge-outbox console`,
-- Sources/OutboxConsole/Auth). Nothing here is read by the gateway or the workers.
--
--   console_accounts         one row per person: name, role (viewer < operator < admin), a bcrypt
--                            password hash (never the password), an optional TOTP secret. Created with
--                            `flexcharge-outbox console user add NAME --role ROLE` (password on stdin).
--   console_sessions         one row per signed-in browser. The cookie holds a random token; the row
--                            holds only its SHA-256, so reading this table does not give a session.
--                            A row ends at expires_at (lifetime from sign-in) or after the idle timeout
--                            (last_seen_at), or when its user signs out (deleted).
--   console_signin_failures  failed sign-ins, counted per account name and per client address over a
--                            window to throttle password guessing; old rows are deleted as new ones come.
--   console_settings         one row: require_totp (an admin's choice: accounts without a TOTP secret
--                            cannot sign in with a password while it is on).
--   console_audit            who changed console accounts and settings, and who signed in. Changes to
--                            merchants and events made through the console land where the CLI's do
--                            (merchant_audit, attempts) with actor 'console:<name>'.
--
-- Which database role the console runs as: a login in flexcharge_operator (0012). The console acts
-- through the CLI's operator code paths (merchant set/credentials, retry, skip, pause), which need
-- exactly that role, so it gets no role of its own: its tables are granted to flexcharge_operator.
-- This gives an operator login nothing it could not already do: it can already change every switch
-- and credential and retry or skip any event directly; it can now also manage console accounts, as
-- `console user add` (run as an operator login) does. A deployment that wants console accounts kept
-- from its CLI operators runs the console with a login of a narrower role of its own, granted these
-- tables and the operator's rights. TOTP secrets are stored as given (the console must read them to
-- check a code); the table is readable by the operator role and the owner only.
--
-- Never edit this file once applied; add a new numbered file.

CREATE TABLE flexcharge.console_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A login name: letters, digits and . _ @ - (an SSO header's user name must match it exactly).
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role            text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    -- bcrypt ($2b$...); NULL for an account that signs in only through the proxy's SSO header.
    password_hash   text CHECK (password_hash IS NULL OR password_hash LIKE '$2%'),
    -- The TOTP shared secret (RFC 6238, SHA-1, 6 digits, 30 s); NULL when not enrolled.
    totp_secret     text,
    -- The last 30-second step whose code was accepted: the same code is not accepted twice.
    totp_last_step  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A disabled account cannot sign in and its sessions end at their next request.
    disabled_at     timestamptz
);
COMMENT ON TABLE flexcharge.console_accounts IS
    'Ops console accounts: role, bcrypt password hash, TOTP secret (see migrations/0023_console.sql).';

CREATE TABLE flexcharge.console_sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash    bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),   -- SHA-256 of the cookie's token
    account_id    bigint NOT NULL REFERENCES flexcharge.console_accounts (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,                                                -- the session's form token
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    address       text,                                                         -- client address at sign-in
    method        text NOT NULL CHECK (method IN ('password', 'password+totp', 'sso'))
);
CREATE INDEX console_sessions_by_account ON flexcharge.console_sessions (account_id);
CREATE INDEX console_sessions_by_expiry ON flexcharge.console_sessions (expires_at);
COMMENT ON TABLE flexcharge.console_sessions IS
    'Signed-in console browsers; the cookie token itself is never stored, only its SHA-256.';

CREATE TABLE flexcharge.console_signin_failures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    account_name  text NOT NULL,       -- as typed (bounded by the console to 64 characters)
    address       text NOT NULL
);
CREATE INDEX console_signin_failures_by_account ON flexcharge.console_signin_failures (account_name, at);
CREATE INDEX console_signin_failures_by_address ON flexcharge.console_signin_failures (address, at);
CREATE INDEX console_signin_failures_by_time ON flexcharge.console_signin_failures (at);
COMMENT ON TABLE flexcharge.console_signin_failures IS 'Failed console sign-ins, for throttling (kept one day).';

CREATE TABLE flexcharge.console_settings (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    require_totp  boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL DEFAULT 'migration'
);
INSERT INTO flexcharge.console_settings DEFAULT VALUES;
COMMENT ON TABLE flexcharge.console_settings IS 'Console-wide settings (one row): require_totp.';

CREATE TABLE flexcharge.console_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,          -- console:<name>, or the OS user for the CLI
    action     text NOT NULL,          -- add, set role, disable, enable, password, totp, require_totp, sign-in, sign-out
    subject    text NOT NULL,          -- the account name, or 'settings'
    old_value  text,
    new_value  text                    -- never a password, hash or secret: only 'set'/'changed'
);
CREATE INDEX console_audit_by_time ON flexcharge.console_audit (at);
COMMENT ON TABLE flexcharge.console_audit IS 'Audit trail of console accounts, settings and sign-ins.';

-- Grants (0012's rule: each new table to the roles that use it; PUBLIC has nothing).
GRANT SELECT, INSERT, UPDATE ON flexcharge.console_accounts TO flexcharge_operator;
GRANT SELECT, INSERT, UPDATE, DELETE ON flexcharge.console_sessions TO flexcharge_operator;
GRANT SELECT, INSERT, DELETE ON flexcharge.console_signin_failures TO flexcharge_operator;
GRANT SELECT, UPDATE ON flexcharge.console_settings TO flexcharge_operator;
GRANT SELECT, INSERT ON flexcharge.console_audit TO flexcharge_operator;
