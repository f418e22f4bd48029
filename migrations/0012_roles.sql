-- 0012_roles.sql
--
-- Database roles: who may do what with the flexcharge schema. Three NOLOGIN group roles; a
-- deployment creates its own login users and GRANTs them the group they need, e.g.
--   CREATE ROLE gateway_app LOGIN PASSWORD '...' IN ROLE flexcharge_gateway;
--   CREATE ROLE outbox_worker LOGIN PASSWORD '...' IN ROLE flexcharge_worker;
--   CREATE ROLE ops_alice LOGIN PASSWORD '...' IN ROLE flexcharge_operator;
--
--   (owner)              whoever runs `flexcharge-outbox migrate`: owns every object, and alone may
--                        ALTER/DROP them, disable triggers, read schema_migrations. Never give the
--                        owner's login to the gateway, the workers or an operator.
--   flexcharge_gateway   the payment gateway: INSERT of the contract columns of flexcharge.outbox
--                        (every kind, evaluates included), SELECT of those columns and of id and
--                        created_at (for INSERT ... RETURNING id), and SELECT on the views
--                        order_events and order_outcomes (the outcome of its orders). LISTEN
--                        (flexcharge_event_done) needs no grant. Nothing else: no worker column
--                        (an INSERT naming one is refused), no UPDATE or DELETE of events, no
--                        merchant settings, no credentials, no worker function.
--   flexcharge_worker    `flexcharge-outbox worker` and `flexcharge-outbox serve` (webhooks and
--                        /v1/tokenize): claim(), rescue_expired_leases(), route(); outbox: SELECT,
--                        and UPDATE of every column but the gateway's and the derived lane,
--                        amount_cents, currency; attempts: INSERT; outcome_events: SELECT, INSERT,
--                        UPDATE; webhook_nonces: SELECT, INSERT, DELETE; merchants, merchant_sites,
--                        merchant_credentials (sealed columns included: it opens them with the key it
--                        is given): SELECT; views queue_health and worker_leases (metrics).
--                        `flexcharge-outbox reconcile` reads sealed credentials too: run it with a
--                        login in this role.
--   flexcharge_operator  the CLI's operator commands: merchant add/set/credentials/show/list/history
--                        and rotate-credentials (merchants, merchant_sites: SELECT, INSERT, UPDATE;
--                        merchant_audit: SELECT, INSERT; merchant_credentials: SELECT, INSERT,
--                        UPDATE, sealed columns included: see below), status, report,
--                        events show/list, retry, skip (outbox: SELECT of every column but payload,
--                        UPDATE of state, next_action, attempts, next_attempt_at, completed_at,
--                        last_error, last_error_class, updated_at; attempts: SELECT, INSERT), and
--                        every view. It cannot insert events (`sample-events` is the gateway's job:
--                        run it as a gateway login), claim them or write outcomes.
--
-- Sealed credentials and the operator: the operator holds the sealing key (it seals what
-- `merchant credentials` stores), and two CLI statements need the sealed columns readable:
-- `merchant credentials` stores with INSERT ... ON CONFLICT DO UPDATE SET x = EXCLUDED.x, which
-- PostgreSQL allows only with SELECT on x, and `merchant rotate-credentials` opens and re-seals
-- every value. So flexcharge_operator may read them: withholding SELECT would not protect the
-- secrets from a holder of the key who may overwrite them. A deployment that wants operators
-- who only flip switches should give them a narrower role of its own (merchants, merchant_sites,
-- merchant_audit and the views). The gateway can read none of it.
--
-- PUBLIC: gets nothing on the schema (no USAGE, no CREATE) and no EXECUTE on its functions
-- (PostgreSQL grants EXECUTE on every new function to PUBLIC; it is revoked below for every
-- function that exists now). No role above may create objects in the schema.
--
-- WHAT A NEW MIGRATION MUST DO (grants are explicit, per object; there are no ALTER DEFAULT
-- PRIVILEGES, because default privileges that revoke PUBLIC's EXECUTE can only be set for a whole
-- database and would reach the gateway's own functions when the owner is the gateway's owner):
--   * a new function: REVOKE ALL ON FUNCTION ... FROM PUBLIC; then GRANT EXECUTE to the roles that
--     call it. A function called by the insert trigger (which runs as the inserting role) needs
--     EXECUTE for flexcharge_gateway; one called by claim() or the worker's statements needs
--     flexcharge_worker. A SECURITY DEFINER function pins search_path and is never PUBLIC.
--     CREATE OR REPLACE of an existing function keeps its grants.
--   * a new table or view: GRANT to each role what it uses (PUBLIC has nothing on tables).
--   * a new outbox column written by workers: GRANT UPDATE (column) ON flexcharge.outbox TO
--     flexcharge_worker, and reset it in flexcharge.outbox_before_insert() (see 0009). A new
--     contract column: GRANT INSERT (column), SELECT (column) to flexcharge_gateway.
--   * a new column of outcome_events, attempts, merchants, merchant_sites or merchant_audit is
--     covered by the table-wide grants below; a new merchant_credentials column needs a SELECT
--     grant to the operator only if it is not secret.
-- Migrations 0010 and 0011 (written alongside this one) replace claim() and
-- rescue_expired_leases() and add outcome_events.refused_reason: all covered here, because this
-- file runs after them.
--
-- Roles are cluster-wide (one set for every database of the server) and are created only when
-- missing, so this file can run in many databases of one cluster, even at the same time.

-- Creating a role needs CREATEROLE. A migrating role without it works when a DBA created the three
-- roles beforehand (CREATE ROLE flexcharge_gateway NOLOGIN; and so on): existing roles are kept as
-- they are.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['flexcharge_gateway', 'flexcharge_worker', 'flexcharge_operator'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
                EXECUTE format('COMMENT ON ROLE %I IS %L', v_role,
                               'FlexCharge Outbox group role (NOLOGIN); see migrations/0012_roles.sql.');
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database of this cluster
            END;
        END IF;
    END LOOP;
END;
$$;

-- The schema: nothing for PUBLIC, USAGE for the three roles.
REVOKE ALL ON SCHEMA flexcharge FROM PUBLIC;
GRANT USAGE ON SCHEMA flexcharge TO flexcharge_gateway, flexcharge_worker, flexcharge_operator;

-- Functions: nothing for PUBLIC; then each role what it calls.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA flexcharge FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- flexcharge_gateway

GRANT INSERT (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload, idempotency_key)
    ON flexcharge.outbox TO flexcharge_gateway;
GRANT SELECT (id, created_at, kind, merchant_id, order_id, channel, origin, site_url, descriptor, idempotency_key)
    ON flexcharge.outbox TO flexcharge_gateway;
GRANT SELECT ON flexcharge.order_events, flexcharge.order_outcomes TO flexcharge_gateway;
-- What the insert trigger calls runs with the inserting role's rights (its search_path is pinned
-- to pg_catalog): the helpers of the checks, and the priority inheritance (SECURITY DEFINER).
-- find_plaintext_pan and text_has_pan also let the gateway test a document before inserting it.
GRANT EXECUTE ON FUNCTION
    flexcharge.reject(text, text),
    flexcharge.is_luhn_valid(text),
    flexcharge.find_plaintext_pan(jsonb, text),
    flexcharge.lane_of(text, text),
    flexcharge.unicode_digit_zeros(),
    flexcharge.pan_digit_class(),
    flexcharge.pan_separator(),
    flexcharge.pan_candidate_pattern(),
    flexcharge.pan_match_pattern(),
    flexcharge.ascii_digits(text),
    flexcharge.card_brand_length_ok(text),
    flexcharge.is_card_number(text),
    flexcharge.run_has_pan(text),
    flexcharge.is_iban(text, text),
    flexcharge.text_has_pan(text),
    flexcharge.pan_field(jsonb, text),
    flexcharge.credential_key_pattern(),
    flexcharge.is_credential_key(text),
    flexcharge.credential_field(jsonb, text),
    flexcharge.inherit_claim_lane(text, text, smallint)
    TO flexcharge_gateway;
-- Trigger functions (outbox_before_insert, outbox_notify_insert, outbox_immutable,
-- outbox_notify_done) need no EXECUTE grant: PostgreSQL checks it when a trigger is created, not
-- when it fires.

-- ---------------------------------------------------------------------------------------------
-- flexcharge_worker

GRANT SELECT ON flexcharge.outbox TO flexcharge_worker;
-- UPDATE of every outbox column except the gateway's (fixed for the event's life, 0003), the
-- identity and the columns derived from the gateway's at insert. Listed from the catalog so the
-- columns 0010/0011 may add are included; a later migration grants its own (see above).
DO $$
DECLARE
    v_columns text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_columns
      FROM pg_attribute
     WHERE attrelid = 'flexcharge.outbox'::regclass AND attnum > 0 AND NOT attisdropped
       AND attgenerated = ''
       AND attname NOT IN ('id', 'created_at', 'kind', 'merchant_id', 'order_id', 'channel', 'origin', 'site_url',
                           'descriptor', 'payload', 'idempotency_key', 'lane', 'amount_cents', 'currency');
    EXECUTE format('GRANT UPDATE (%s) ON flexcharge.outbox TO flexcharge_worker', v_columns);
END;
$$;
GRANT INSERT ON flexcharge.attempts TO flexcharge_worker;
-- OutboxStore.record checks whether an attempt is already in the ledger (attempt, worker,
-- started_at); release() whether an event was ever called (action).
GRANT SELECT (event_id, attempt, action, worker, started_at) ON flexcharge.attempts TO flexcharge_worker;
GRANT SELECT, INSERT, UPDATE ON flexcharge.outcome_events TO flexcharge_worker;
GRANT SELECT, INSERT, DELETE ON flexcharge.webhook_nonces TO flexcharge_worker;
GRANT SELECT ON flexcharge.merchants, flexcharge.merchant_sites, flexcharge.merchant_credentials TO flexcharge_worker;
GRANT SELECT ON flexcharge.queue_health, flexcharge.worker_leases TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION
    flexcharge.claim(text, integer, integer[], interval),
    flexcharge.rescue_expired_leases(integer, interval, text[]),
    flexcharge.route(text, text, text, text)
    TO flexcharge_worker;

-- ---------------------------------------------------------------------------------------------
-- flexcharge_operator

GRANT SELECT, INSERT, UPDATE ON flexcharge.merchants, flexcharge.merchant_sites TO flexcharge_operator;
GRANT SELECT, INSERT ON flexcharge.merchant_audit TO flexcharge_operator;
GRANT SELECT, INSERT, UPDATE ON flexcharge.merchant_credentials TO flexcharge_operator;
DO $$
DECLARE
    v_columns text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_columns
      FROM pg_attribute
     WHERE attrelid = 'flexcharge.outbox'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'payload';
    EXECUTE format('GRANT SELECT (%s) ON flexcharge.outbox TO flexcharge_operator', v_columns);
END;
$$;
GRANT UPDATE (state, next_action, attempts, next_attempt_at, completed_at, last_error, last_error_class, updated_at)
    ON flexcharge.outbox TO flexcharge_operator;
GRANT SELECT, INSERT ON flexcharge.attempts TO flexcharge_operator;
GRANT SELECT ON flexcharge.order_events, flexcharge.order_outcomes, flexcharge.daily_report,
                flexcharge.queue_health, flexcharge.worker_leases TO flexcharge_operator;
GRANT EXECUTE ON FUNCTION flexcharge.route(text, text, text, text) TO flexcharge_operator;
