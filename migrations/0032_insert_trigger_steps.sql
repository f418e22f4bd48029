-- 0032_insert_trigger_steps.sql
--
-- The gateway's insert, cheaper again (issue 14: "the gateway's insert <= 40 us of PostgreSQL
-- time for one ~1 KB event with every check", one event per transaction, inside the gateway's
-- payment transaction), and the workers' updates no longer compute the column site.
-- WHAT IS REFUSED IS UNCHANGED: the same checks in the same order, with the same field-named
-- errors, the same PAN and credential decisions (0009, 0015, 0022, 0028).
--
-- Where the time of a single-row insert goes (callgrind, see below): PL/pgSQL prepares the
-- executable form of every expression it evaluates once per TRANSACTION (ExecInitExprWithParams,
-- then CheckExprStillValid on the first run, which visits every step again), so a gateway inserting
-- one event per transaction pays, for every expression the trigger reaches, about 300 instructions
-- per step: per column reference, constant, operator or function call in it. Merging the checks into
-- fewer, larger expressions does not help (a draft of this migration asked one expression of every
-- check: +7 k, the same steps plus a growing step array); fewer steps do.
--
-- 1. THE GENERATED COLUMN site BECOMES AN ORDINARY COLUMN THE INSERT TRIGGER SETS. 0003 made
--    site a STORED generated column (coalesce(site_url, descriptor)). PostgreSQL 15 reads and
--    prepares its expression for every INSERT statement (its parse tree read from the catalog,
--    then planned: 21 k instructions of a single-row insert, the trigger's assignment included)
--    and computes it again on EVERY UPDATE of the row, whichever columns the UPDATE sets: the
--    worker's claim and outcome updates paid for it (11.6 k of a single-row UPDATE, below). Now the insert trigger sets
--    NEW.site := coalesce(NEW.site_url, NEW.descriptor), the same rule, for every row, whatever
--    the insert said; ALTER COLUMN site DROP EXPRESSION keeps every existing row's value (it
--    changes the catalog only: no rewrite, no scan). Both happen in this one migration (one
--    transaction), so no row is ever inserted without its site. It stays the rule's:
--      * no role may name it: flexcharge_gateway has INSERT on the contract columns only,
--        flexcharge_worker and flexcharge_operator UPDATE of other columns only (0012), so an
--        INSERT or UPDATE naming site is refused, "permission denied" (InsertTriggerStepsTests);
--      * whoever may still insert it (the owner) has it overwritten by the trigger;
--      * outbox_immutable (0003, 0015; an AFTER trigger since 0031) now covers site too: an UPDATE
--        of it is refused like one of site_url or descriptor, whoever runs it. The workers'
--        updates never name it, so they still do not fire that trigger.
--    No NOT NULL constraint is added (it would read the whole table under this migration's lock);
--    the trigger refuses an event with neither site_url nor descriptor, as before.
--
-- 2. THE AMOUNT'S TEST WITHOUT A REGULAR EXPRESSION. '^[0-9]{1,15}$' cost about 15 k
--    instructions per call on a four-digit text (a bounded repetition: its automaton is set up
--    again at every call). flexcharge.is_whole_cents_text() asks the same question, "1 to 15
--    characters, every one an ASCII digit", with length() and translate() (InsertTriggerStepsTests
--    compares the two over generated texts and JSON numbers); it is inlined into the trigger's
--    expression.
--
-- 3. FEWER STEPS FOR THE SAME ANSWERS.
--    * "x IS NULL OR x NOT IN (...)" becomes (x IN (...)) IS NOT TRUE, which is TRUE exactly when
--      the old test is (kind, channel, a cit event's origin, the payload's type); "x IS NULL OR
--      btrim(x) = '' OR length(x) > 128" becomes (btrim(x) <> '' AND length(x) <= 128) IS NOT
--      TRUE, likewise (merchant_id, order_id).
--    * The worker columns' check counts the eleven columns that must be NULL with one
--      num_nonnulls() (= 0 exactly when all are NULL) instead of eleven IS NULL tests.
--    * The credential quick test (0028's credential_key_may_start) asks whether the greatest of
--      its ten strpos() positions is above 0 instead of ten "> 0" comparisons: strpos gives 0 for
--      "not found" and a position from 1 otherwise, so the answer is the same (NULL for a NULL
--      text, as before; InsertGuardCostTests still compares it with 0022's pattern).
--    * The amount and currency are each set once where they are set (not first to NULL).
--    * A test that needs a payload key asks for the key first, in its own IF, so an event without
--      it never prepares the rest (PL/pgSQL prepares a whole IF condition, though it stops
--      evaluating at the first false AND): the four "columns win" refusals of 0015 behind one
--      "payload ?| {orderId,isMIT,siteUrl} OR transaction ? descriptor" (each needs its key), the
--      amount section's isMIT and the idempotency key's comparison with payload.idempotencyKey.
--      The same refusals in the same order: a refusal whose key is missing could not fire.
--    * The PAN guard joins its texts once on the common path (payload, descriptor, site_url,
--      idempotency_key and dedupe_key for the quick test), and the four without dedupe_key only
--      when the quick test finds a run (0028 joined both every time); v_has_run is the same value.
--    * site_url or descriptor: (btrim(site_url) <> '' OR btrim(descriptor) <> '') IS NOT TRUE, TRUE
--      exactly when coalesce(btrim(site_url), '') = '' AND coalesce(btrim(descriptor), '') = '' is.
--
-- 4. THE WAKE NOTIFY WITHOUT A QUERY. PERFORM runs its expression as a query (an executor start
--    and end through SPI); the evaluates' pg_notify is now the value of an assignment, which
--    PL/pgSQL evaluates as a plain expression. The same notification, delivered at commit.
--
-- Measured with callgrind (instructions are stable on a busy machine; time is not): instructions
-- per event, scripts/bench-insert's 20 000-event mix (~1 KB payloads), 3 000 events of other
-- orders already in the table, marginal rows (one INSERT per transaction: rows 101-400; COPY:
-- rows 501-2 500), single-user backend; "before" is migrations 0001-0030.
--                                          one INSERT per tx        COPY
--   all of 0032                            872 k -> 794 k           509 k -> 485 k
--   1. site no longer generated              -21 k                    -10 k
--   2. the amount without a regular
--      expression, with 3's IS NOT TRUE,
--      num_nonnulls and 4                    -12 k (the regular expression's share: -11 k)
--   3. greatest() in the credential test      -9 k
--   3. keys first (the columns-win gate
--      and site_url/descriptor: -21 k;
--      isMIT, idempotencyKey: -7 k)          -28 k
--   3. the PAN guard's texts joined once      -9 k
--   2-4 together                                                      -15 k
-- (1: 0032 without its DROP EXPRESSION and NEW.site line, against 0032 before the "keys first"
-- step; the others: each draft against the one before, in the order of the table; the regular
-- expression's share: textregexne in the profile.)
-- The workers: a single-row UPDATE of state, lease, attempts and updated_at, one per transaction
-- (the claim's shape), 63.2 k -> 51.6 k instructions on the same table (rows 51-200): PostgreSQL
-- 15 no longer computes site at every UPDATE (the claim and the outcome write each did).
--
-- NEW FUNCTIONS AND GRANTS (0012's rules): is_whole_cents_text() is called only by the insert
-- trigger, which runs as the owner (SECURITY DEFINER since 0022): no EXECUTE for any role, revoked
-- from PUBLIC. CREATE OR REPLACE keeps the grants of outbox_before_insert(), outbox_immutable()
-- (trigger functions: none) and credential_key_may_start() (0028: none, revoked from PUBLIC). The
-- trigger outbox_immutable is created again with site in its column list, AFTER UPDATE as 0031
-- left it (a BEFORE UPDATE row trigger would make every worker update fetch and lock its row
-- again: 0031's header).
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 2. The amount's test without a regular expression.

-- True when p_text is 1 to 15 characters, each an ASCII digit: exactly the texts '^[0-9]{1,15}$'
-- matches (a bracket range is by code point; translate() removes only those ten characters);
-- NULL for NULL. SQL, so that it is inlined into the trigger's expression.
CREATE FUNCTION flexcharge.is_whole_cents_text(p_text text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT length(p_text) BETWEEN 1 AND 15 AND translate(p_text, '0123456789', '') = ''
$$;
REVOKE ALL ON FUNCTION flexcharge.is_whole_cents_text(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 3. The credential quick test (0028) in fewer steps: the greatest of the ten positions is above 0
-- exactly when one of them is (strpos gives 0 for "not found", a position from 1 otherwise; NULL
-- for a NULL text, as before). Same answer (InsertGuardCostTests), 14 steps fewer.
CREATE OR REPLACE FUNCTION flexcharge.credential_key_may_start(p_folded text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(strpos(p_folded, '"app'), strpos(p_folded, '"api'), strpos(p_folded, '"client'),
                    strpos(p_folded, '"access'), strpos(p_folded, '"refresh'), strpos(p_folded, '"bearer'),
                    strpos(p_folded, '"tokeniz'), strpos(p_folded, '"webhook'), strpos(p_folded, '"subscriber'),
                    strpos(p_folded, '"pass')) > 0
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. site: an ordinary column from now on, set by the insert trigger below (same transaction).
ALTER TABLE flexcharge.outbox ALTER COLUMN site DROP EXPRESSION;

-- ---------------------------------------------------------------------------------------------
-- 1-4. The insert trigger, version 5: 0028's, same checks in the same order, fewer steps.
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
    v_void text;
BEGIN
    -- 0009: the contract columns. (X) IS NOT TRUE is "X is false or NULL" (3 above).
    IF (NEW.kind IN ('transmit', 'evaluate', 'cancel', 'refund', 'capture', 'external_cancel')) IS NOT TRUE THEN
        PERFORM flexcharge.reject('kind', format('must be one of transmit, evaluate, cancel, refund, capture, external_cancel (got %s)', coalesce(quote_literal(NEW.kind), 'NULL')));
    END IF;
    IF (btrim(NEW.merchant_id) <> '' AND length(NEW.merchant_id) <= 128) IS NOT TRUE THEN
        PERFORM flexcharge.reject('merchant_id', 'is required (1 to 128 characters)');
    END IF;
    IF (btrim(NEW.order_id) <> '' AND length(NEW.order_id) <= 128) IS NOT TRUE THEN
        PERFORM flexcharge.reject('order_id', 'is required (1 to 128 characters)');
    END IF;
    IF (NEW.channel IN ('cit', 'mit')) IS NOT TRUE THEN
        PERFORM flexcharge.reject('channel', format('must be cit or mit (got %s)', coalesce(quote_literal(NEW.channel), 'NULL')));
    END IF;
    IF NEW.channel = 'cit' AND (NEW.origin IN ('website', 'call_center')) IS NOT TRUE THEN
        PERFORM flexcharge.reject('origin', format('must be website or call_center for a cit event (got %s)', coalesce(quote_literal(NEW.origin), 'NULL')));
    END IF;
    IF NEW.channel = 'mit' AND NEW.origin IS NOT NULL THEN
        PERFORM flexcharge.reject('origin', 'must be NULL for an mit event (origin tells website from call center orders, which are cit)');
    END IF;
    IF (btrim(NEW.site_url) <> '' OR btrim(NEW.descriptor) <> '') IS NOT TRUE THEN
        PERFORM flexcharge.reject('site_url', 'site_url or descriptor is required: it tells which site the order belongs to');
    END IF;
    IF (jsonb_typeof(NEW.payload) = 'object') IS NOT TRUE THEN
        PERFORM flexcharge.reject('payload', 'must be a JSON object (the FlexCharge request body)');
    END IF;
    v_text := NEW.payload::text;
    IF octet_length(v_text) > 65536 THEN
        PERFORM flexcharge.reject('payload', 'is larger than 64 KiB');
    END IF;
    -- Credentials: the precise pattern only when a key could start like one (0022, 0028).
    v_folded := lower(v_text COLLATE "C");
    IF flexcharge.credential_key_may_start(v_folded) THEN
        IF v_text ~* flexcharge.credential_key_pattern() THEN
            v_field := flexcharge.credential_field(NEW.payload, 'payload');
            IF v_field IS NOT NULL THEN
                PERFORM flexcharge.reject(v_field, 'must not carry FlexCharge credentials (they come from flexcharge.merchant_credentials)');
            END IF;
        END IF;
    END IF;

    -- Amounts are integer cents, as FlexCharge expects them (the amount's test: 2 above).
    IF NEW.kind IN ('transmit', 'evaluate') THEN
        v_amount := NEW.payload #> '{transaction,amount}';
        IF (jsonb_typeof(v_amount) = 'number' AND flexcharge.is_whole_cents_text(v_amount #>> '{}')) IS NOT TRUE THEN
            PERFORM flexcharge.reject('payload.transaction.amount', 'is required: a whole number of cents (e.g. 1999 for 19.99)');
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        NEW.currency := NEW.payload #>> '{transaction,currency}';
        IF NEW.payload ? 'isMIT' THEN
            IF (NEW.payload ->> 'isMIT') IS DISTINCT FROM (NEW.channel = 'mit')::text THEN
                PERFORM flexcharge.reject('payload.isMIT', format('contradicts channel %s', NEW.channel));
            END IF;
        END IF;
    ELSIF NEW.kind IN ('refund', 'capture') THEN
        v_amount := NEW.payload -> 'amountCents';
        IF (jsonb_typeof(v_amount) = 'number' AND flexcharge.is_whole_cents_text(v_amount #>> '{}')) IS NOT TRUE
           OR (v_amount #>> '{}')::bigint = 0 THEN
            PERFORM flexcharge.reject('payload.amountCents', format('is required: the amount to %s in whole cents, above 0', NEW.kind));
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        NEW.currency := NULL;
        IF NEW.kind = 'capture' AND NEW.payload ? 'currency' THEN
            IF jsonb_typeof(NEW.payload -> 'currency') <> 'string' OR (NEW.payload ->> 'currency') !~ '^[A-Z]{3}$' THEN
                PERFORM flexcharge.reject('payload.currency', 'must be three upper-case letters (ISO 4217, e.g. USD)');
            END IF;
            NEW.currency := NEW.payload ->> 'currency';
        END IF;
    ELSE
        NEW.amount_cents := NULL;
        NEW.currency := NULL;
    END IF;

    -- The PAN guard: payload (any depth, keys too), descriptor, site_url, idempotency_key, and
    -- (below, in 0015's turn) dedupe_key. One quick test of everything first (0028).
    -- (The joined text of the four without dedupe_key is built only when the quick test finds a run:
    -- 3 above.)
    v_has_run := concat_ws('|', v_text, NEW.descriptor, NEW.site_url, NEW.idempotency_key, NEW.dedupe_key)
                 ~ flexcharge.pan_quick_pattern();
    IF v_has_run THEN
        v_checked := concat_ws('|', v_text, NEW.descriptor, NEW.site_url, NEW.idempotency_key);
        IF flexcharge.text_has_pan(v_checked) THEN
            v_field := CASE
                WHEN flexcharge.text_has_pan(v_text) THEN coalesce(flexcharge.pan_field(NEW.payload, 'payload'), 'payload')
                WHEN flexcharge.text_has_pan(coalesce(NEW.descriptor, '')) THEN 'descriptor'
                WHEN flexcharge.text_has_pan(coalesce(NEW.site_url, '')) THEN 'site_url'
                ELSE 'idempotency_key'
            END;
            PERFORM flexcharge.reject(v_field,
                'holds a plaintext card number; tokenize the card first (POST /v1/tokenize) and send the token with "token": true');
        END IF;
    END IF;

    -- The idempotency key: given, else the payload's, else a new UUID; fixed from now on.
    IF NEW.payload ? 'idempotencyKey' THEN
        IF NEW.idempotency_key IS NOT NULL AND NEW.payload ->> 'idempotencyKey' <> NEW.idempotency_key THEN
            PERFORM flexcharge.reject('idempotency_key', 'differs from payload.idempotencyKey; give one or make them equal');
        END IF;
    END IF;
    NEW.idempotency_key := coalesce(NEW.idempotency_key, NEW.payload ->> 'idempotencyKey', gen_random_uuid()::text);
    IF length(NEW.idempotency_key) NOT BETWEEN 1 AND 64 THEN
        PERFORM flexcharge.reject('idempotency_key', 'must be 1 to 64 characters (a UUID is best)');
    END IF;

    -- 0015: the columns win (what is sent is what the columns say). Each of the four refusals needs
    -- its key in the payload; an event without any of them skips all four (3 above).
    IF NEW.payload ?| '{orderId,isMIT,siteUrl}'::text[] OR NEW.payload -> 'transaction' ? 'descriptor' THEN
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
    NEW.site := coalesce(NEW.site_url, NEW.descriptor);   -- 1 above

    -- Every column the workers own, whatever the insert said (0009's list; 0022's item 6). The
    -- eleven that must be NULL are counted by one call (3 above).
    IF (NEW.state = 'pending' AND NEW.next_action = 'send' AND NEW.attempts = 0 AND NEW.outcome_polls = 0
        AND NEW.created_at = now() AND NEW.updated_at = now() AND NEW.next_attempt_at = now()
        AND num_nonnulls(NEW.lease_owner, NEW.lease_expires_at, NEW.first_claimed_at, NEW.environment,
                         NEW.transaction_key, NEW.order_session_key, NEW.decision, NEW.last_http_status,
                         NEW.last_error_class, NEW.last_error, NEW.field_errors, NEW.completed_at) = 0) IS NOT TRUE THEN
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
    -- pending events run first, so they are claimed at this evaluate's priority; transmits block
    -- nothing), and the wake NOTIFY (0026's, from here since 0028; an assignment: 4 above).
    IF NEW.lane < 2 THEN
        UPDATE flexcharge.outbox
           SET claim_lane = NEW.lane
         WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id
           AND state = 'pending' AND claim_lane > NEW.lane
           AND kind <> 'transmit';
        v_void := pg_notify('flexcharge_outbox', NEW.lane::text);
    END IF;
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. site cannot change after insert either (0015's rule, site added).
CREATE OR REPLACE FUNCTION flexcharge.outbox_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.kind, NEW.merchant_id, NEW.order_id, NEW.channel, NEW.origin, NEW.site_url, NEW.descriptor,
           NEW.payload, NEW.idempotency_key, NEW.dedupe_key, NEW.is_test, NEW.site)
       IS DISTINCT FROM
       ROW(OLD.kind, OLD.merchant_id, OLD.order_id, OLD.channel, OLD.origin, OLD.site_url, OLD.descriptor,
           OLD.payload, OLD.idempotency_key, OLD.dedupe_key, OLD.is_test, OLD.site) THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation',
            MESSAGE = 'flexcharge.outbox: an event''s gateway columns cannot change after insert; insert a new event instead';
    END IF;
    RETURN NEW;
END;
$$;

-- Fires only when a statement names one of these columns: the workers' updates never pay for it.
-- An AFTER trigger, as 0031 made it: no BEFORE UPDATE row trigger on the table (0031's header).
DROP TRIGGER outbox_immutable ON flexcharge.outbox;
CREATE TRIGGER outbox_immutable
    AFTER UPDATE OF kind, merchant_id, order_id, channel, origin, payload, idempotency_key, site_url, descriptor,
                     dedupe_key, is_test, site
    ON flexcharge.outbox FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_immutable();
