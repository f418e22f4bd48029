-- 0035_blank_site_url.sql
--
-- A blank site_url is no site URL: the event's site is then its descriptor.
--
-- WHY: the rule is "each transaction carries its site: site_url, else the descriptor" (0002, 0003). The
-- insert trigger set site := coalesce(site_url, descriptor) (0032), and the request body sends siteUrl
-- whenever site_url is not NULL, the descriptor only when it is (0015, 0030). A gateway that wrote
-- site_url = '' (an empty form field, a driver that writes '' for "no value") with a descriptor got:
--   * site = '', so a site override of the merchant (flexcharge.merchant_sites, keyed by the descriptor)
--     never applied: the event was routed by the merchant's own switches, even where its site's switch
--     said off or sandbox;
--   * "siteUrl": "" sent to FlexCharge, and no transaction.descriptor: the transaction carried no site;
--   * the reports' per-site rows grouped under ''.
-- The insert accepted it, since its check asks for a site_url OR a descriptor that is not blank.
--
-- NOW: the insert trigger sets a site_url that is empty or only white space (spaces, tabs, line breaks)
-- to NULL at its site check, before anything reads site_url, so its later checks, its site and the
-- request body all see no site_url. A blank site_url
-- without a descriptor is refused as before ("site_url or descriptor is required"). Rows inserted
-- before this file keep what they had (site_url and site are immutable, 0003, 0032).
--
-- WHY THE WHOLE FUNCTION AGAIN: it is 0032's outbox_before_insert() with its "site_url or descriptor"
-- check rewritten (CREATE OR REPLACE needs the whole body, and applied files are never edited).
-- Instructions per row (scripts/bench-insert --after-from 0035 --rows 2000 --repeats 1, 300 rows
-- counted; 0001-0034 gave 788 550 per one-row INSERT, 481 840 per row by COPY):
--   a separate BEFORE INSERT trigger with a WHEN condition, fired first by its name   823 964 / 484 629
--   (PostgreSQL reads and prepares a trigger's WHEN expression for every INSERT statement, as 0032
--   says of the generated column it removed);
--   a test added before the check                                                    794 248 / 484 418
--   the check rewritten to test site_url first (this file)                           786 648 / 482 185
--   (the last run's 0001-0034: 788 347 / 481 795): no cost.
-- CREATE OR REPLACE keeps the function's grants (a trigger function: none) and its trigger.
--
-- Never edit this file once applied; add a new numbered file.

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
    -- 0035: a blank site_url is no site URL (its site is then the descriptor). One test on the common
    -- path (a site URL), as the check it replaces.
    IF (btrim(NEW.site_url, E' \t\r\n') <> '') IS NOT TRUE THEN
        NEW.site_url := NULL;
        IF (btrim(NEW.descriptor) <> '') IS NOT TRUE THEN
            PERFORM flexcharge.reject('site_url', 'site_url or descriptor is required: it tells which site the order belongs to');
        END IF;
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

