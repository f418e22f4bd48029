-- 0015_what_is_sent.sql
--
-- What is sent to FlexCharge is what the columns say; every request body is built in one place;
-- inserting the same event twice is harmless; the done-notification carries FlexCharge's order id.
--
-- 1. ONE HOME FOR REQUEST BODIES: flexcharge.request_body() below builds the body of every call the
--    worker makes (transmit, evaluate, cancel, external_cancel, refund, capture). The worker's claim
--    (OutboxStore.claim) selects it as text and sends those bytes unchanged; nothing in the worker
--    builds, parses or re-serializes a body. Why in SQL, by cost per event: the payload is stored as
--    jsonb (already parsed) and the worker needs it as text anyway, so the server merges on the parsed
--    form and writes the text it had to write regardless. Measured on this project's 0.9 KB sample
--    evaluate (20 000 rows, one session, best of two): the payload's text alone 6 µs of database CPU
--    per row; this function's body 15 µs for an event with a site URL, 24 µs when it also merges into
--    the transaction object (a descriptor, a call-center marker); the inline expression it replaces
--    (which sent neither) 17 µs. Building in Swift instead (JSONSerialization: parse, merge,
--    serialize) took 230 µs per body, against the worker's budget of 60 µs of CPU per event
--    (issue 14). Bodies are built once per claim; nothing re-parses them.
--
-- 2. THE COLUMNS WIN. For /transmit and /evaluate the body is the gateway's payload with:
--      orderId            = order_id                (always)
--      isMIT              = (channel = 'mit')       (always)
--      siteUrl            = site_url                (removed when site_url is NULL)
--      transaction.descriptor = descriptor          when site_url is NULL (the partner checklist: "if
--                           you cannot provide the siteUrl, pass transaction.descriptor")
--      transaction.dynamicDescriptor = the payload's own, else descriptor (the contract's name for the
--                           statement descriptor, §5.4): one column serves both names, and a gateway
--                           that prints a different statement text per order still can
--      mid                = the merchant's MID for the routed environment (from its credentials)
--      idempotencyKey     = idempotency_key         (evaluate)
--    and, on a call-center CIT event (channel 'cit', origin 'call_center') only, the merchant's
--    call-center marker (see 3): orderSource and transaction.cardNotPresent.
--    A payload that disagrees with a column is REFUSED at insert, naming the field (SQLSTATE 23514,
--    as 0009's checks): payload.orderId <> order_id, payload.isMIT <> (channel = 'mit') (also a
--    string "true"), payload.siteUrl <> site_url (a siteUrl with no site_url too), and
--    payload.transaction.descriptor <> descriptor. Leave those out of the payload: the columns are
--    sent. (Rows inserted before this file are sent with the columns' values too.)
--    Follow-up bodies are built from columns only:
--      cancel, external_cancel   {"idempotencyKey"}
--      refund                    {"amountToRefund": amount_cents as exact decimal dollars (1234 ->
--                                12.34), "refundMessage": payload.refundMessage when a string}
--      capture                   {"idempotencyKey", "orderId": FlexCharge's order id, "amount":
--                                amount_cents, "currency"}
--    (cancel, refund and capture act on FlexCharge's order id: the order's evaluate's, which claim()
--    fills in, else payload.orderSessionKey; it goes in the URL, or the body for capture.)
--
-- 3. CALL-CENTER MARKER. FlexCharge documents no MOTO or call-center value (contract §8.2), so what
--    marks a call-center CIT is set per merchant (flexcharge-outbox merchant set --call-center-order-source
--    / --call-center-card-not-present, audited like the switches):
--      merchants.call_center_order_source      text, default 'call_center'; sent as orderSource on
--                                               call-center CIT events (over the payload's); NULL
--                                               (`none`): no orderSource is added
--      merchants.call_center_card_not_present  boolean, default true (a phone order is card-not-
--                                               present); sent as transaction.cardNotPresent on
--                                               call-center CIT events
--    Website CIT and MIT events are sent as the payload says.
--
-- 4. DEDUPE KEY (a contract column): dedupe_key text, optional, unique per merchant. A gateway that
--    may retry its insert (it lost the answer to COMMIT) gives each event a key of its own making and
--    inserts with
--        INSERT INTO flexcharge.outbox (..., dedupe_key) VALUES (..., $key)
--        ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
--        RETURNING id;            -- no row: it was inserted before; nothing is counted or sent twice
--    1 to 200 characters, no card number. Events without one are not deduplicated.
--
-- 5. The 'flexcharge_event_done' NOTIFY payload gains "order_session_key" (FlexCharge's order id,
--    which a checkout needs to show the CHALLENGE widget): {"id", "merchant_id", "order_id", "kind",
--    "state", "decision", "order_session_key"}.
--
-- 6. Immutability (0003's outbox_immutable) now covers dedupe_key and is_test (0014) too.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 3. The call-center marker, per merchant.

ALTER TABLE flexcharge.merchants
    ADD COLUMN call_center_order_source text DEFAULT 'call_center'
        CONSTRAINT merchants_call_center_order_source_valid
        CHECK (call_center_order_source ~ '^[A-Za-z0-9][A-Za-z0-9 _./-]{0,63}$'),
    ADD COLUMN call_center_card_not_present boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN flexcharge.merchants.call_center_order_source IS
    'orderSource sent on call-center CIT events (FlexCharge documents no MOTO value); NULL: none. See migrations/0015_what_is_sent.sql.';
COMMENT ON COLUMN flexcharge.merchants.call_center_card_not_present IS
    'transaction.cardNotPresent sent on call-center CIT events. See migrations/0015_what_is_sent.sql.';

-- ---------------------------------------------------------------------------------------------
-- 4. The dedupe key.

ALTER TABLE flexcharge.outbox ADD COLUMN dedupe_key text;
COMMENT ON COLUMN flexcharge.outbox.dedupe_key IS
    'Set by the gateway, optional: unique per merchant, so a retried insert can be ON CONFLICT DO NOTHING. See migrations/0015_what_is_sent.sql.';
-- Partial: events without a key cost nothing here. (Built while the migration holds the table: on a
-- large table run it in a quiet hour; the new column is empty, so the build only reads the table.)
CREATE UNIQUE INDEX outbox_dedupe ON flexcharge.outbox (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- 2. The columns win: refused at insert.
--
-- A second BEFORE INSERT trigger beside 0009's (which stays as it is). PostgreSQL fires triggers of
-- the same timing in name order: outbox_before_insert (0009's checks, derived columns, the PAN guard
-- of the payload) runs first, then outbox_columns_win, so the payload is already known to be an
-- object and the workers' columns are already reset.
CREATE FUNCTION flexcharge.outbox_columns_win() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
        IF flexcharge.text_has_pan(NEW.dedupe_key) THEN
            PERFORM flexcharge.reject('dedupe_key',
                'holds a plaintext card number; use an id of your own (a UUID is best)');
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION flexcharge.outbox_columns_win() FROM PUBLIC;

CREATE TRIGGER outbox_columns_win BEFORE INSERT ON flexcharge.outbox
    FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_columns_win();

-- ---------------------------------------------------------------------------------------------
-- 1. The one home of request bodies (see the header for the rules).
--
-- p_event: the claimed row (order_session_key filled in by claim() for follow-ups); p_merchant: its
-- merchant's row (the call-center marker); p_mid: the MID of the routed environment's credentials;
-- p_currency: a capture's currency (its own, else its order's evaluate's). One SQL expression, so
-- PostgreSQL inlines it into the claim's SELECT (no function call per event).
CREATE FUNCTION flexcharge.request_body(p_event flexcharge.outbox, p_merchant flexcharge.merchants,
                                        p_mid text, p_currency text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN (p_event).kind IN ('transmit', 'evaluate') THEN
            -- (Each || copies the document: the two conditional parts cost nothing when they add nothing,
            -- which is the common case of a website event with a site URL.)
            CASE WHEN (p_event).payload ? 'siteUrl' THEN (p_event).payload - 'siteUrl' ELSE (p_event).payload END
            || jsonb_strip_nulls(jsonb_build_object(
                   'orderId', (p_event).order_id,
                   'isMIT', (p_event).channel = 'mit',
                   'siteUrl', (p_event).site_url,
                   'mid', p_mid,
                   'idempotencyKey', CASE WHEN (p_event).kind = 'evaluate' THEN (p_event).idempotency_key END,
                   'orderSource', CASE WHEN (p_event).channel = 'cit' AND (p_event).origin = 'call_center'
                                       THEN (p_merchant).call_center_order_source END))
            || CASE WHEN (p_event).descriptor IS NOT NULL OR ((p_event).channel = 'cit' AND (p_event).origin = 'call_center')
                    THEN jsonb_build_object('transaction', ((p_event).payload -> 'transaction')
                       || jsonb_strip_nulls(jsonb_build_object(
                              'descriptor', CASE WHEN (p_event).site_url IS NULL THEN (p_event).descriptor END,
                              'dynamicDescriptor', coalesce((p_event).payload #> '{transaction,dynamicDescriptor}',
                                                            to_jsonb((p_event).descriptor)),
                              'cardNotPresent', CASE WHEN (p_event).channel = 'cit' AND (p_event).origin = 'call_center'
                                                     THEN (p_merchant).call_center_card_not_present END)))
                    ELSE '{}'::jsonb END
        WHEN (p_event).kind IN ('cancel', 'external_cancel') THEN
            jsonb_build_object('idempotencyKey', (p_event).idempotency_key)
        WHEN (p_event).kind = 'refund' THEN
            jsonb_strip_nulls(jsonb_build_object(
                'amountToRefund', round((p_event).amount_cents::numeric / 100, 2),
                'refundMessage', CASE WHEN jsonb_typeof((p_event).payload -> 'refundMessage') = 'string'
                                      THEN (p_event).payload -> 'refundMessage' END))
        WHEN (p_event).kind = 'capture' THEN
            jsonb_strip_nulls(jsonb_build_object(
                'idempotencyKey', (p_event).idempotency_key,
                'orderId', coalesce((p_event).order_session_key, (p_event).payload ->> 'orderSessionKey'),
                'amount', (p_event).amount_cents,
                'currency', p_currency))
    END
$$;
REVOKE ALL ON FUNCTION flexcharge.request_body(flexcharge.outbox, flexcharge.merchants, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.request_body(flexcharge.outbox, flexcharge.merchants, text, text)
    TO flexcharge_worker;

-- ---------------------------------------------------------------------------------------------
-- 5. The done-notification carries FlexCharge's order id (replaces 0003's function; the trigger is
-- unchanged).
CREATE OR REPLACE FUNCTION flexcharge.outbox_notify_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flexcharge_event_done', json_build_object(
        'id', NEW.id, 'merchant_id', NEW.merchant_id, 'order_id', NEW.order_id,
        'kind', NEW.kind, 'state', NEW.state, 'decision', NEW.decision,
        'order_session_key', NEW.order_session_key)::text);
    RETURN NULL;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- 6. Immutability of the gateway's columns, dedupe_key and is_test included (replaces 0003's): the
-- contract columns, compared as one row.
CREATE OR REPLACE FUNCTION flexcharge.outbox_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.kind, NEW.merchant_id, NEW.order_id, NEW.channel, NEW.origin, NEW.site_url, NEW.descriptor,
           NEW.payload, NEW.idempotency_key, NEW.dedupe_key, NEW.is_test)
       IS DISTINCT FROM
       ROW(OLD.kind, OLD.merchant_id, OLD.order_id, OLD.channel, OLD.origin, OLD.site_url, OLD.descriptor,
           OLD.payload, OLD.idempotency_key, OLD.dedupe_key, OLD.is_test) THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation',
            MESSAGE = 'flexcharge.outbox: an event''s gateway columns cannot change after insert; insert a new event instead';
    END IF;
    RETURN NEW;
END;
$$;

-- Fires only when a statement names one of these columns: the workers' updates never pay for it.
DROP TRIGGER outbox_immutable ON flexcharge.outbox;
CREATE TRIGGER outbox_immutable
    BEFORE UPDATE OF kind, merchant_id, order_id, channel, origin, payload, idempotency_key, site_url, descriptor,
                     dedupe_key, is_test
    ON flexcharge.outbox FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_immutable();

-- ---------------------------------------------------------------------------------------------
-- Grants (0012's rules). dedupe_key is a contract column: the gateway inserts and reads it back,
-- the operator reads it; workers read every column (0012) and never write it. The new merchant
-- columns are covered by 0012's table-wide grants (operator: SELECT, INSERT, UPDATE; worker: SELECT).
-- request_body(): the worker (above). outbox_columns_win() is a trigger function: no EXECUTE needed.
GRANT INSERT (dedupe_key), SELECT (dedupe_key) ON flexcharge.outbox TO flexcharge_gateway;
GRANT SELECT (dedupe_key) ON flexcharge.outbox TO flexcharge_operator;
