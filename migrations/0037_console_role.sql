-- 0037_console_role.sql
--
-- The ops console gets a role of its own, flexcharge_console, and the console's accounts, sessions,
-- sign-in failures and settings are no longer the operators'.
--
-- WHY: `flexcharge-outbox console` ran as an operator login (0023), so every member of
-- flexcharge_operator (each operator's CLI login) could
--   * read every console account's bcrypt password hash (to crack offline, and reuse elsewhere) and
--     its TOTP secret (which yields that person's second factor for good);
--   * give its console account the admin role, set another account's password or authenticator, or
--     insert a console session for any account under a token hash it chose: sign in as anyone,
--     and act (retry, skip, change switches and credentials) under their name in the audit trails.
-- A CLI login is a credential handed to people and scripts; the console's user store is not theirs.
--
-- NOW:
--   flexcharge_console   `flexcharge-outbox console` (serve, and `console user ...`,
--                        `console require-totp`): a member of flexcharge_operator, so it may do what
--                        an operator may (the console acts through the CLI's code), and in addition
--                        console_accounts (SELECT, INSERT, UPDATE), console_sessions (SELECT, INSERT,
--                        UPDATE, DELETE), console_signin_failures (SELECT, INSERT, DELETE),
--                        console_settings (SELECT, UPDATE), console_audit (SELECT, INSERT).
--   flexcharge_operator  keeps SELECT on console_audit (who changed which console account, and
--                        when: no secret is ever written there) and loses everything else on the
--                        console's tables.
-- A deployment creates one login for the console process (and for whoever manages its accounts):
--   CREATE ROLE outbox_console LOGIN PASSWORD '...' IN ROLE flexcharge_console;
-- and moves the console off the operator login it used before this file: until then the console
-- answers every sign-in with an error (it can no longer read its accounts).
--
-- The role is created as 0012 creates the others: once per cluster, only when missing (a DBA may
-- create it beforehand, NOLOGIN, when the migrating role lacks CREATEROLE; the membership in
-- flexcharge_operator is then granted here, or, without the right to, the migration stops and says
-- which statement a DBA must run).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flexcharge_console') THEN
        BEGIN
            CREATE ROLE flexcharge_console NOLOGIN;
            COMMENT ON ROLE flexcharge_console IS
                'FlexCharge Outbox group role (NOLOGIN) of the ops console; see migrations/0037_console_role.sql.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of this cluster
        END;
    END IF;
    IF NOT pg_has_role('flexcharge_console', 'flexcharge_operator', 'MEMBER') THEN
        BEGIN
            GRANT flexcharge_operator TO flexcharge_console;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'flexcharge_console must be a member of flexcharge_operator'
                    USING HINT = 'As a role with CREATEROLE, run: GRANT flexcharge_operator TO flexcharge_console; then migrate again.';
            WHEN unique_violation THEN
                NULL;  -- granted meanwhile by a migration of another database of this cluster
        END;
    END IF;
END;
$$;

GRANT USAGE ON SCHEMA flexcharge TO flexcharge_console;

REVOKE ALL ON flexcharge.console_accounts, flexcharge.console_sessions, flexcharge.console_signin_failures,
              flexcharge.console_settings
    FROM flexcharge_operator;
REVOKE INSERT, UPDATE, DELETE ON flexcharge.console_audit FROM flexcharge_operator;

GRANT SELECT, INSERT, UPDATE ON flexcharge.console_accounts TO flexcharge_console;
GRANT SELECT, INSERT, UPDATE, DELETE ON flexcharge.console_sessions TO flexcharge_console;
GRANT SELECT, INSERT, DELETE ON flexcharge.console_signin_failures TO flexcharge_console;
GRANT SELECT, UPDATE ON flexcharge.console_settings TO flexcharge_console;
GRANT SELECT, INSERT ON flexcharge.console_audit TO flexcharge_console;
