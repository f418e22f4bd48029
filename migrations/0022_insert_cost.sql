-- 0022_insert_cost.sql
--
-- The gateway's insert, cheaper (issue 14): the gateway pays for every check of flexcharge.outbox
-- inside its own payment transaction, so each microsecond here is one the payment waits for.
-- WHAT IS CHECKED AND REFUSED IS UNCHANGED: the same rules, in the same order, with the same
-- errors (0009's checks, 0015's "columns win" checks, the PAN guard, the credential guard). What
-- changes is how much work an ordinary event costs. Measured with scripts/bench-insert (20 000
-- events of about 1 KB, a gateway's mix of kinds; its README section in docs/capacity.md gives
-- the figures of the latest run).
--
-- 1. ONE ROW TRIGGER INSTEAD OF TWO. 0009's outbox_before_insert() and 0015's
--    outbox_columns_win() become one function (same trigger name, outbox_before_insert), so each
--    row enters PL/pgSQL and switches search_path once, not twice.
--
-- 2. THE PAN GUARD LOOKS CLOSER ONLY AT RUNS OF 14 DIGITS OR MORE. No card brand has fewer than 14
--    digits (flexcharge.card_brand_length_ok, 0009: Diners 14-19, Amex 15, the others 16-19; the
--    "glued" CVV / expiry windows of run_has_pan are 18 digits or more), so a run of 13 digits never
--    held a card number by the guard's own rules: pan_candidate_pattern() now asks for 14. The
--    decision is the same for every text (a run of 13 was looked at and always let through); what
--    changes is that epoch milliseconds (13 digits) and most phone numbers (+49 151 12345678: 13)
--    no longer send the payload through the slow path (GUID removal, a match loop, the windows).
--    On the bench's mix that path ran for 28 % of events; now for 0.6 %.
--    The slow path itself: ascii_digits() returns an ASCII text as it is (it rebuilt its 650-digit
--    map from unicode_digit_zeros() at every call), and is_card_number() / card_brand_length_ok()
--    are PL/pgSQL, which keeps their plans for the session (as SQL functions they could not be
--    inlined and were planned at every call, about 0.3 ms each).
--
-- 3. TESTS BEFORE WALKS. Both guards first ask one regular expression over the text the insert
--    already has (the payload's text form, joined with the checked columns), and do the precise
--    work only when it finds something:
--      PAN guard:   the text holds a run of 14 digits (pan_candidate_pattern) -> text_has_pan and
--                   the field search, exactly as before; else nothing to do;
--      credentials: the text holds '"' followed by the start of a credential key (app, api, client,
--                   access, refresh, bearer, tokeniz, webhook, subscriber, pass: every key the
--                   credential pattern matches starts so, in any letter case) -> 0009's pattern
--                   and the key search; else nothing to do.
--
-- 4. THE WAKE NOTIFY is unchanged: 0003's statement trigger outbox_notify_insert sends one
--    notification per statement with the most urgent lane inserted (LaneTests reads it so). It
--    costs about 3 000 instructions per row in a COPY and 36 000 for an insert of one row (its
--    transition table); a per-row pg_notify in the row trigger would cost about 1 800, but sends one
--    notification per lane, the first not always the most urgent.
--
-- 5. PRIORITY INHERITANCE ONLY WHERE IT CAN CHANGE SOMETHING, AND WITHOUT A FUNCTION CALL.
--    inherit_claim_lane() (0014) raises an order's earlier pending events other than transmits to
--    the new event's lane. A follow-up (lane 2) can never raise one: every earlier non-transmit
--    event is in lane 2 or below already. So only evaluates (lanes 0 and 1) run it, and they run
--    the UPDATE here, not through a SECURITY DEFINER function call (which cost about 40 µs: a
--    second function with its own pinned search_path). For that the trigger function itself runs
--    with its owner's rights (SECURITY DEFINER, search_path pinned as before): what it writes is
--    NEW (the row being inserted, whose worker columns it resets anyway) and the same UPDATE
--    inherit_claim_lane() runs as the owner. A trigger function cannot be called directly, and the
--    gateway's own rights still decide what it may INSERT (column grants are checked before any
--    trigger). inherit_claim_lane() stays, with its grants, for anyone who calls it.
--
-- 6. THE WORKER COLUMNS ARE RESET ONLY WHEN AN INSERT SET ONE. The gateway's role cannot name
--    them (0012), so they hold their defaults: the trigger checks that in one expression and
--    assigns the 19 columns only when one differs (the owner's insert of a forged row still gets
--    every column reset, InsertBoundaryTests).
--
-- 7. NO SECOND CHECK OF THE GATEWAY'S COLUMNS BY TABLE CONSTRAINTS. PostgreSQL reads and plans a
--    table's CHECK constraints again for every INSERT statement (once per COPY, but once per event
--    for a gateway inserting one event per transaction: about 0.3 M instructions, more than the
--    plain insert itself). Five of 0003's / 0009's constraints check what the insert trigger has
--    already refused with a message naming the field, on columns outbox_immutable (0003/0015)
--    keeps from changing afterwards: outbox_kind_valid, outbox_channel_valid, outbox_origin_valid,
--    outbox_site_present, outbox_payload_object. They are dropped; the trigger is their one home
--    (no role but the owner can disable it: RoleTests). The constraints on what workers write
--    (outbox_state_valid, outbox_next_action_valid, outbox_running_has_lease) stay.
--
-- Indexes are unchanged here (the claim index and the indexes of the claim/outcome path are
-- 0021's; the costs each index adds to an insert are printed by scripts/bench-insert --profile).
--
-- Grants (0012's rules): the new helpers unicode_digits() and unicode_digits_as_ascii() are called
-- by ascii_digits(), which the gateway may call (through text_has_pan / find_plaintext_pan):
-- EXECUTE for flexcharge_gateway, never PUBLIC. The trigger function needs no EXECUTE grant; it is
-- revoked from PUBLIC like every SECURITY DEFINER function. CREATE OR REPLACE keeps the grants of the
-- functions replaced.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 2. The PAN guard: runs of 14 digits or more (see above; the rest of the pattern as in 0009).
CREATE OR REPLACE FUNCTION flexcharge.pan_candidate_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT flexcharge.pan_digit_class() || '(?:' || flexcharge.pan_separator() || '{0,3}'
        || flexcharge.pan_digit_class() || '){13,}'
$$;

-- The Unicode decimal digits other than ASCII's, block by block, and the ASCII digit of each.
-- Constants (IMMUTABLE, no argument): PostgreSQL computes them once, when it plans the statement
-- that uses them, not at every call.
CREATE FUNCTION flexcharge.unicode_digits() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg(chr(z + i), '' ORDER BY o, i)
      FROM unnest(flexcharge.unicode_digit_zeros()) WITH ORDINALITY AS u(z, o), generate_series(0, 9) AS i
     WHERE z <> 48
$$;

CREATE FUNCTION flexcharge.unicode_digits_as_ascii() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT repeat('0123456789', cardinality(flexcharge.unicode_digit_zeros()) - 1)
$$;

-- Every Unicode decimal digit mapped to its ASCII digit (as 0009's); an ASCII text is returned as it is.
CREATE OR REPLACE FUNCTION flexcharge.ascii_digits(p_text text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF octet_length(p_text) = length(p_text) THEN
        RETURN p_text;
    END IF;
    RETURN translate(p_text, flexcharge.unicode_digits(), flexcharge.unicode_digits_as_ascii());
END;
$$;

-- 0009's rules, unchanged, as PL/pgSQL (plans kept for the session).
CREATE OR REPLACE FUNCTION flexcharge.card_brand_length_ok(p_digits text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN CASE
        WHEN left(p_digits, 1) = '4' THEN length(p_digits) IN (16, 19)   -- Visa (13-digit Visa: see 0009)
        WHEN left(p_digits, 2) BETWEEN '51' AND '55'
          OR left(p_digits, 4) BETWEEN '2221' AND '2720' THEN length(p_digits) = 16               -- Mastercard
        WHEN left(p_digits, 2) IN ('34', '37') THEN length(p_digits) = 15                        -- Amex
        WHEN left(p_digits, 3) BETWEEN '300' AND '305' OR left(p_digits, 4) = '3095'
          OR left(p_digits, 2) IN ('36', '38', '39') THEN length(p_digits) BETWEEN 14 AND 19     -- Diners
        WHEN left(p_digits, 4) BETWEEN '3528' AND '3589' THEN length(p_digits) BETWEEN 16 AND 19 -- JCB
        WHEN left(p_digits, 4) BETWEEN '2200' AND '2204' THEN length(p_digits) BETWEEN 16 AND 19 -- Mir
        WHEN left(p_digits, 2) IN ('50', '56', '57', '58', '60', '62', '65', '67', '81', '82')
          OR left(p_digits, 3) BETWEEN '636' AND '639' OR left(p_digits, 3) BETWEEN '644' AND '649'
          OR left(p_digits, 4) = '6304' THEN length(p_digits) BETWEEN 16 AND 19  -- Discover, UnionPay, Maestro, RuPay
        WHEN left(p_digits, 4) = '9792' THEN length(p_digits) = 16                               -- Troy
        ELSE false
    END;
END;
$$;

CREATE OR REPLACE FUNCTION flexcharge.is_card_number(p_digits text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN flexcharge.card_brand_length_ok(p_digits) AND flexcharge.is_luhn_valid(p_digits);
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- 1, 3-6. The insert trigger, version 3: 0009's checks, then 0015's, in their order and with
-- their messages (replaces both functions; 0015's trigger is dropped below).
CREATE OR REPLACE FUNCTION flexcharge.outbox_before_insert() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text text;
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
    -- Credentials: the precise pattern only when a key could start like one (3 above).
    IF v_text ~* '"(?:app|api|client|access|refresh|bearer|tokeniz|webhook|subscriber|pass)' THEN
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
    -- (below, in 0015's turn) dedupe_key. One test of everything first (3 above); a text without
    -- a run of 14 digits holds no card number, so the guard has nothing more to do.
    v_checked := concat_ws('|', v_text, NEW.descriptor, NEW.site_url, NEW.idempotency_key);
    v_has_run := concat_ws('|', v_checked, NEW.dedupe_key) ~ flexcharge.pan_candidate_pattern();
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

    -- Every column the workers own, whatever the insert said (0009's list; 6 above).
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

    -- Priority inheritance (0014's rule, 5 above): this order's earlier pending events run first
    -- (per-order order), so they are claimed at this evaluate's priority; transmits block nothing.
    IF NEW.lane < 2 THEN
        UPDATE flexcharge.outbox
           SET claim_lane = NEW.lane
         WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id
           AND state = 'pending' AND claim_lane > NEW.lane
           AND kind <> 'transmit';
    END IF;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION flexcharge.outbox_before_insert() FROM PUBLIC;

-- 0015's checks now run in outbox_before_insert(): one home.
DROP TRIGGER outbox_columns_win ON flexcharge.outbox;
DROP FUNCTION flexcharge.outbox_columns_win();

-- 7. The insert trigger checks these (see the header); outbox_immutable keeps them.
ALTER TABLE flexcharge.outbox
    DROP CONSTRAINT outbox_kind_valid,
    DROP CONSTRAINT outbox_channel_valid,
    DROP CONSTRAINT outbox_origin_valid,
    DROP CONSTRAINT outbox_site_present,
    DROP CONSTRAINT outbox_payload_object;

-- ---------------------------------------------------------------------------------------------
-- Grants (0012's rules; see the header).
REVOKE ALL ON FUNCTION flexcharge.unicode_digits(), flexcharge.unicode_digits_as_ascii() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.unicode_digits(), flexcharge.unicode_digits_as_ascii() TO flexcharge_gateway;
