-- 0028_insert_guard_cost.sql
--
-- The gateway's insert, cheaper again (issue 14: "the gateway's insert <= 40 us of PostgreSQL
-- time for one ~1 KB event with every check", paid inside the gateway's payment transaction, one
-- event per transaction). WHAT IS REFUSED IS UNCHANGED: the same checks in the same order, the same
-- field-named errors, the same PAN and credential decisions on every input (0009, 0015, 0022). What
-- changes is the work an ordinary event costs, and where three constraints on the WORKERS' columns
-- are enforced.
--
-- Measured with callgrind (instructions are stable on a busy machine; time is not): instructions
-- per event, 20 000-event bench mix of scripts/bench-insert (~1 KB payloads), one INSERT per
-- transaction after 3 000 events already in the table (marginal rows 101-400), and one COPY
-- (marginal rows 501-2 500); "before" is every other migration (0029 and 0030 included).
--                                          one INSERT per tx        COPY
--   all of 0028                            1 093 k -> 873 k         621 k -> 510 k
--   1. PAN quick test                        -66 k                    -67 k
--   1. credential quick test                 -26 k                    -49 k
--   2. CHECKs to an UPDATE trigger          -109 k                     ~0
--   3. NOTIFY from the insert trigger        -18 k                     -2 k
-- (each change: 0028 with it undone, measured on a draft that wrote the checks as one CASE
-- expression, given up: PL/pgSQL builds an expression's executable form once per transaction, and
-- the CASE made it build every check, where nested IF statements build only those reached; it cost
-- 75 k more.) The rest of a single-row insert, per event: the payload's text form about 50 k, the
-- two quick tests about 60 k each, the remaining checks and assignments of the trigger about
-- 150 k (PL/pgSQL re-initialises each expression once per transaction), the parameters' parsing
-- (jsonb_in) about 117 k, the indexes about 107 k plus opening them per statement about 30 k.
--
-- 1. QUICK TESTS THAT COST LESS THAN A REGULAR EXPRESSION'S PASS. Both guards first ask a cheap
--    question whose "no" proves that the precise guard would find nothing; a "yes" runs the precise
--    guard exactly as before (so the decisions cannot change, only the cost of an ordinary event):
--      PAN guard: flexcharge.pan_quick_pattern(): a digit, then 13 more digits with separators of
--        any length between them. Its digit class is every ASCII digit and everything from U+0660
--        up (every Unicode decimal digit but ASCII's is there: unicode_digit_zeros()), its
--        separators the ASCII ones, U+00A0, U+00B7 and everything from U+0660 up, and JSON's \t \n
--        \r \f \b. Every text pan_candidate_pattern() matches, this matches (a superset of each
--        class, any number of separators where the old pattern allowed 0 to 3, {13} where it said
--        {13,}); PostgreSQL runs it in about half the instructions (its automaton has a few states
--        where the old one, counting 0-3 separators 13 times over 66 digit blocks, had hundreds).
--        text_has_pan() still begins with pan_candidate_pattern(), so a text this lets through is
--        looked at exactly as before.
--      credentials: flexcharge.credential_key_may_start(): the payload's text with ASCII letters
--        lowered (lower(... COLLATE "C"), which touches no other character) holds '"app', '"api',
--        '"client', '"access', '"refresh', '"bearer', '"tokeniz', '"webhook', '"subscriber' or
--        '"pass' (strpos, no regular expression). This is exactly 0022's case-insensitive prefix
--        test: PostgreSQL's regular expressions fold an ASCII pattern letter to its ASCII upper and
--        lower case only, in every collation that the database's default can be (regc_pg_locale.c
--        forces ASCII rules for ASCII letters; ICU's simple case mapping is ASCII's for them).
--    Tests/SchemaTests/InsertGuardCostTests.swift compares each quick test with the old one over
--    generated texts and every Unicode digit and separator, in PostgreSQL.
--
-- 2. THE THREE CHECK CONSTRAINTS ON WORKER COLUMNS MOVE TO A BEFORE UPDATE TRIGGER.
--    outbox_state_valid, outbox_next_action_valid and outbox_running_has_lease are CHECK
--    constraints, which PostgreSQL reads from the catalog and plans again for every INSERT or
--    UPDATE statement (about 0.12 M instructions per single-row insert for these three: the gateway
--    paid for rules about what workers write). An insert cannot break them: the insert trigger sets
--    state 'pending', next_action 'send' and no lease whatever the insert said (0009, 0022). So they
--    are checked where those columns change: the row trigger outbox_worker_columns_valid, BEFORE
--    UPDATE, for every UPDATE of any column and any role, with a WHEN condition that is the three
--    constraints' conjunction (its function runs only for a row that breaks one), raising the same
--    error a CHECK raises (SQLSTATE 23514, the constraint's name, PostgreSQL's message; constraints
--    in PostgreSQL's order, by name). The worker's UPDATE statements pay one trigger condition per
--    statement where they paid three constraints. What only a CHECK gives and this does not: the
--    owner or a superuser could switch the trigger off (ALTER TABLE ... DISABLE TRIGGER, or
--    session_replication_role = replica); they can drop a CHECK constraint too. No other role can
--    (RoleTests). The trigger is named to fire after the other BEFORE UPDATE trigger
--    (outbox_immutable), so it sees the row as it will be written.
--
-- 3. THE WAKE NOTIFY IS SENT BY THE INSERT TRIGGER. 0026's AFTER INSERT row trigger had a WHEN
--    condition (NEW.lane <= 1), which PostgreSQL reads and plans once per statement, so every
--    insert paid for it, transmits included. The same pg_notify('flexcharge_outbox', lane) is now
--    sent by outbox_before_insert() for lanes 0 and 1 only (LaneTests: the same notifications for
--    every mix of kinds). Like every notification it is delivered only if the transaction commits,
--    and dropped with the statement if the insert fails; the one difference: an evaluate skipped by
--    INSERT ... ON CONFLICT DO NOTHING (a retried insert with the same dedupe_key) still wakes the
--    workers, which find nothing new to claim.
--
-- Indexes are not touched (0021, 0029). NEW FUNCTIONS AND GRANTS (0012's rules): the helpers
-- pan_quick_pattern() and credential_key_may_start() are called
-- only by the insert trigger, which runs as the owner (SECURITY DEFINER since 0022): no EXECUTE for
-- any role, revoked from PUBLIC. outbox_worker_columns_valid() is a trigger function: revoked from
-- PUBLIC, no grant needed. CREATE OR REPLACE keeps outbox_before_insert()'s grants.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 1. The quick tests.

-- A superset of pan_candidate_pattern() (see the header): a digit, then 13 more, with any
-- separators between them. Constant: folded when a statement that uses it is planned.
CREATE FUNCTION flexcharge.pan_quick_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '[0-9\u0660-\U0010ffff]'
        || '(?:(?:[ \t\n\r\f\b./\\_\u00a0\u00b7\u0660-\U0010ffff-]|\\[tnrfb])*[0-9\u0660-\U0010ffff]){13}'
$$;

-- True when a text whose ASCII letters were lowered (lower(text COLLATE "C")) holds '"' and the
-- start of a credential key, as credential_key_pattern() spells them; a text without one cannot
-- hold a credential key (see the header). SQL, so that it is inlined into the trigger's expression.
CREATE FUNCTION flexcharge.credential_key_may_start(p_folded text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT strpos(p_folded, '"app') > 0 OR strpos(p_folded, '"api') > 0 OR strpos(p_folded, '"client') > 0
        OR strpos(p_folded, '"access') > 0 OR strpos(p_folded, '"refresh') > 0 OR strpos(p_folded, '"bearer') > 0
        OR strpos(p_folded, '"tokeniz') > 0 OR strpos(p_folded, '"webhook') > 0 OR strpos(p_folded, '"subscriber') > 0
        OR strpos(p_folded, '"pass') > 0
$$;

-- ---------------------------------------------------------------------------------------------
-- 1, 3. The insert trigger, version 4: 0022's, with the quick tests and the wake NOTIFY.
CREATE OR REPLACE FUNCTION flexcharge.outbox_before_insert() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text text;
    v_folded text;
    v_checked text;
    v_has_run boolean;
    v_field text;
    v_amount jsonb;
BEGIN
    -- 0009: the contract columns.
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('transmit', 'evaluate', 'cancel', 'refund', 'capture', 'external_cancel') THEN
        PERFORM flexcharge.reject('kind', format('must be one of transmit, evaluate, cancel, refund, capture, external_cancel (got %s)', coalesce(quote_literal(NEW.kind), 'NULL')));
    END IF;
    IF NEW.merchant_id IS NULL OR btrim(NEW.merchant_id) = '' OR length(NEW.merchant_id) > 128 THEN
        PERFORM flexcharge.reject('merchant_id', 'is required (1 to 128 characters)');
    END IF;
    IF NEW.order_id IS NULL OR btrim(NEW.order_id) = '' OR length(NEW.order_id) > 128 THEN
        PERFORM flexcharge.reject('order_id', 'is required (1 to 128 characters)');
    END IF;
    IF NEW.channel IS NULL OR NEW.channel NOT IN ('cit', 'mit') THEN
        PERFORM flexcharge.reject('channel', format('must be cit or mit (got %s)', coalesce(quote_literal(NEW.channel), 'NULL')));
    END IF;
    IF NEW.channel = 'cit' AND (NEW.origin IS NULL OR NEW.origin NOT IN ('website', 'call_center')) THEN
        PERFORM flexcharge.reject('origin', format('must be website or call_center for a cit event (got %s)', coalesce(quote_literal(NEW.origin), 'NULL')));
    END IF;
    IF NEW.channel = 'mit' AND NEW.origin IS NOT NULL THEN
        PERFORM flexcharge.reject('origin', 'must be NULL for an mit event (origin tells website from call center orders, which are cit)');
    END IF;
    IF coalesce(btrim(NEW.site_url), '') = '' AND coalesce(btrim(NEW.descriptor), '') = '' THEN
        PERFORM flexcharge.reject('site_url', 'site_url or descriptor is required: it tells which site the order belongs to');
    END IF;
    IF NEW.payload IS NULL OR jsonb_typeof(NEW.payload) <> 'object' THEN
        PERFORM flexcharge.reject('payload', 'must be a JSON object (the FlexCharge request body)');
    END IF;
    v_text := NEW.payload::text;
    IF octet_length(v_text) > 65536 THEN
        PERFORM flexcharge.reject('payload', 'is larger than 64 KiB');
    END IF;
    -- Credentials: the precise pattern only when a key could start like one (0022), asked with
    -- strpos of the text with its ASCII letters lowered (1 above).
    v_folded := lower(v_text COLLATE "C");
    IF flexcharge.credential_key_may_start(v_folded) THEN
        IF v_text ~* flexcharge.credential_key_pattern() THEN
            v_field := flexcharge.credential_field(NEW.payload, 'payload');
            IF v_field IS NOT NULL THEN
                PERFORM flexcharge.reject(v_field, 'must not carry FlexCharge credentials (they come from flexcharge.merchant_credentials)');
            END IF;
        END IF;
    END IF;

    -- Amounts are integer cents, as FlexCharge expects them.
    NEW.amount_cents := NULL;
    NEW.currency := NULL;
    IF NEW.kind IN ('transmit', 'evaluate') THEN
        v_amount := NEW.payload #> '{transaction,amount}';
        IF v_amount IS NULL OR jsonb_typeof(v_amount) <> 'number' OR (v_amount #>> '{}') !~ '^[0-9]{1,15}$' THEN
            PERFORM flexcharge.reject('payload.transaction.amount', 'is required: a whole number of cents (e.g. 1999 for 19.99)');
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        NEW.currency := NEW.payload #>> '{transaction,currency}';
        IF NEW.payload ? 'isMIT' AND (NEW.payload ->> 'isMIT') IS DISTINCT FROM (NEW.channel = 'mit')::text THEN
            PERFORM flexcharge.reject('payload.isMIT', format('contradicts channel %s', NEW.channel));
        END IF;
    ELSIF NEW.kind IN ('refund', 'capture') THEN
        v_amount := NEW.payload -> 'amountCents';
        IF v_amount IS NULL OR jsonb_typeof(v_amount) <> 'number' OR (v_amount #>> '{}') !~ '^[0-9]{1,15}$'
           OR (v_amount #>> '{}')::bigint = 0 THEN
            PERFORM flexcharge.reject('payload.amountCents', format('is required: the amount to %s in whole cents, above 0', NEW.kind));
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        IF NEW.kind = 'capture' AND NEW.payload ? 'currency' THEN
            IF jsonb_typeof(NEW.payload -> 'currency') <> 'string' OR (NEW.payload ->> 'currency') !~ '^[A-Z]{3}$' THEN
                PERFORM flexcharge.reject('payload.currency', 'must be three upper-case letters (ISO 4217, e.g. USD)');
            END IF;
            NEW.currency := NEW.payload ->> 'currency';
        END IF;
    END IF;

    -- The PAN guard: payload (any depth, keys too), descriptor, site_url, idempotency_key, and
    -- (below, in 0015's turn) dedupe_key. One quick test of everything first (1 above); a text it
    -- finds nothing in holds no run of 14 digits, so no card number.
    v_checked := concat_ws('|', v_text, NEW.descriptor, NEW.site_url, NEW.idempotency_key);
    v_has_run := concat_ws('|', v_checked, NEW.dedupe_key) ~ flexcharge.pan_quick_pattern();
    IF v_has_run AND flexcharge.text_has_pan(v_checked) THEN
        v_field := CASE
            WHEN flexcharge.text_has_pan(v_text) THEN coalesce(flexcharge.pan_field(NEW.payload, 'payload'), 'payload')
            WHEN flexcharge.text_has_pan(coalesce(NEW.descriptor, '')) THEN 'descriptor'
            WHEN flexcharge.text_has_pan(coalesce(NEW.site_url, '')) THEN 'site_url'
            ELSE 'idempotency_key'
        END;
        PERFORM flexcharge.reject(v_field,
            'holds a plaintext card number; tokenize the card first (POST /v1/tokenize) and send the token with "token": true');
    END IF;

    -- The idempotency key: given, else the payload's, else a new UUID; fixed from now on.
    IF NEW.idempotency_key IS NOT NULL AND NEW.payload ? 'idempotencyKey'
       AND NEW.payload ->> 'idempotencyKey' <> NEW.idempotency_key THEN
        PERFORM flexcharge.reject('idempotency_key', 'differs from payload.idempotencyKey; give one or make them equal');
    END IF;
    NEW.idempotency_key := coalesce(NEW.idempotency_key, NEW.payload ->> 'idempotencyKey', gen_random_uuid()::text);
    IF length(NEW.idempotency_key) NOT BETWEEN 1 AND 64 THEN
        PERFORM flexcharge.reject('idempotency_key', 'must be 1 to 64 characters (a UUID is best)');
    END IF;

    -- 0015: the columns win (what is sent is what the columns say).
    IF NEW.payload ? 'orderId' AND NEW.payload -> 'orderId' IS DISTINCT FROM to_jsonb(NEW.order_id) THEN
        PERFORM flexcharge.reject('payload.orderId',
            'differs from order_id; leave it out: order_id is sent as orderId');
    END IF;
    IF NEW.payload ? 'isMIT' AND NEW.payload -> 'isMIT' IS DISTINCT FROM to_jsonb(NEW.channel = 'mit') THEN
        PERFORM flexcharge.reject('payload.isMIT',
            format('contradicts channel %s; leave it out: isMIT is sent from channel', NEW.channel));
    END IF;
    IF NEW.payload ? 'siteUrl'
       AND NEW.payload -> 'siteUrl' IS DISTINCT FROM coalesce(to_jsonb(NEW.site_url), 'null'::jsonb) THEN
        PERFORM flexcharge.reject('payload.siteUrl',
            'differs from site_url; leave it out: site_url is sent as siteUrl');
    END IF;
    IF NEW.payload -> 'transaction' ? 'descriptor'
       AND NEW.payload #> '{transaction,descriptor}' IS DISTINCT FROM coalesce(to_jsonb(NEW.descriptor), 'null'::jsonb) THEN
        PERFORM flexcharge.reject('payload.transaction.descriptor',
            'differs from descriptor; leave it out: without a site_url, descriptor is sent as transaction.descriptor');
    END IF;
    IF NEW.dedupe_key IS NOT NULL THEN
        IF length(NEW.dedupe_key) NOT BETWEEN 1 AND 200 OR btrim(NEW.dedupe_key) = '' THEN
            PERFORM flexcharge.reject('dedupe_key', 'must be 1 to 200 characters, or NULL');
        END IF;
        IF v_has_run AND flexcharge.text_has_pan(NEW.dedupe_key) THEN
            PERFORM flexcharge.reject('dedupe_key',
                'holds a plaintext card number; use an id of your own (a UUID is best)');
        END IF;
    END IF;

    NEW.lane := flexcharge.lane_of(NEW.kind, NEW.channel);
    NEW.claim_lane := NEW.lane;

    -- Every column the workers own, whatever the insert said (0009's list; 0022's item 6).
    IF (NEW.state = 'pending' AND NEW.next_action = 'send' AND NEW.attempts = 0 AND NEW.outcome_polls = 0
        AND NEW.created_at = now() AND NEW.updated_at = now() AND NEW.next_attempt_at = now()
        AND NEW.lease_owner IS NULL AND NEW.lease_expires_at IS NULL AND NEW.first_claimed_at IS NULL
        AND NEW.environment IS NULL AND NEW.transaction_key IS NULL AND NEW.order_session_key IS NULL
        AND NEW.decision IS NULL AND NEW.last_http_status IS NULL AND NEW.last_error_class IS NULL
        AND NEW.last_error IS NULL AND NEW.field_errors IS NULL AND NEW.completed_at IS NULL) IS NOT TRUE THEN
        NEW.created_at := now();
        NEW.state := 'pending';
        NEW.next_action := 'send';
        NEW.attempts := 0;
        NEW.next_attempt_at := now();
        NEW.lease_owner := NULL;
        NEW.lease_expires_at := NULL;
        NEW.first_claimed_at := NULL;
        NEW.environment := NULL;
        NEW.transaction_key := NULL;
        NEW.order_session_key := NULL;
        NEW.decision := NULL;
        NEW.last_http_status := NULL;
        NEW.last_error_class := NULL;
        NEW.last_error := NULL;
        NEW.field_errors := NULL;
        NEW.completed_at := NULL;
        NEW.updated_at := now();
        NEW.outcome_polls := 0;
    END IF;

    -- Evaluates only: priority inheritance (0014's rule, inline since 0022: this order's earlier
    -- pending events run first (per-order order), so they are claimed at this evaluate's priority;
    -- transmits block nothing), and the wake NOTIFY (0026's, sent from here since 0028: 3 above).
    IF NEW.lane < 2 THEN
        UPDATE flexcharge.outbox
           SET claim_lane = NEW.lane
         WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id
           AND state = 'pending' AND claim_lane > NEW.lane
           AND kind <> 'transmit';
        PERFORM pg_notify('flexcharge_outbox', NEW.lane::text);
    END IF;
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION flexcharge.pan_quick_pattern(), flexcharge.credential_key_may_start(text) FROM PUBLIC;

-- 3. The wake NOTIFY is sent by the insert trigger now.
DROP TRIGGER outbox_notify_evaluate ON flexcharge.outbox;
DROP FUNCTION flexcharge.outbox_notify_evaluate();

-- ---------------------------------------------------------------------------------------------
-- 2. The worker columns' three rules, checked where they change.
CREATE FUNCTION flexcharge.outbox_worker_columns_valid() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_constraint text;
BEGIN
    v_constraint := CASE
        WHEN NOT (NEW.next_action IN ('send', 'lookup')) THEN 'outbox_next_action_valid'
        WHEN NOT (NEW.state <> 'running' OR (NEW.lease_owner IS NOT NULL AND NEW.lease_expires_at IS NOT NULL)) THEN 'outbox_running_has_lease'
        ELSE 'outbox_state_valid'
    END;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', SCHEMA = 'flexcharge', TABLE = 'outbox', CONSTRAINT = v_constraint,
        MESSAGE = format('new row for relation "outbox" violates check constraint "%s"', v_constraint);
END;
$$;
REVOKE ALL ON FUNCTION flexcharge.outbox_worker_columns_valid() FROM PUBLIC;

-- The condition is 0003's three CHECK constraints; like a CHECK, a NULL passes here (and is then
-- refused by the column's NOT NULL).
CREATE TRIGGER outbox_worker_columns_valid BEFORE UPDATE ON flexcharge.outbox
    FOR EACH ROW
    WHEN (NOT (NEW.next_action IN ('send', 'lookup')
               AND (NEW.state <> 'running' OR (NEW.lease_owner IS NOT NULL AND NEW.lease_expires_at IS NOT NULL))
               AND NEW.state IN ('pending', 'running', 'succeeded', 'awaiting_outcome', 'failed', 'skipped', 'dead')))
    EXECUTE FUNCTION flexcharge.outbox_worker_columns_valid();

ALTER TABLE flexcharge.outbox
    DROP CONSTRAINT outbox_next_action_valid,
    DROP CONSTRAINT outbox_running_has_lease,
    DROP CONSTRAINT outbox_state_valid;
