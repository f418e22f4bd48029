-- 0030_request_body_text.sql
--
-- The request body of the common transmit or evaluate written as text, without rebuilding the payload
-- (issue 14). What is sent is the same JSON object as before for every event (same members, same
-- values); only, on the common path, the members the outbox adds come before the payload's own instead
-- of in jsonb's key order (JSON objects are unordered; FlexCharge reads members by name).
--
-- Before, request_body() (0015) built every body as jsonb: the payload || the outbox's members, then
-- the claim turned it into text: jsonb || decomposes and rebuilds the whole ~1 KB document, then
-- jsonb_out writes it again. Callgrind of the claiming backend (bench-sql, ~1 KB transmits): jsonb_out
-- 43 000 instructions per event, jsonb_concat 31 500, jsonb_build_object 23 000: about a quarter of
-- the claim's instructions, for a body that is the payload plus four short members.
--
-- Now the rule's home is request_body_text() below (0015's rule moved into it, unchanged, as its
-- fallback), and request_body() is its jsonb form (same signature and grants: RequestBodyTests and
-- any caller see the same object). For a transmit or evaluate whose body only adds members (no key it
-- adds is in the payload already, no descriptor, not a call-center CIT, a payload with members), the
-- text is '{"orderId": ..., "isMIT": ..., "siteUrl": ..., "mid": ..., "idempotencyKey": ...' (each only
-- where the rule adds it; values escaped by to_json), then ', ' and the payload's own text (jsonb_out,
-- once) after its opening brace. Every other body takes 0015's expression, as it was.
-- claim_for_worker() (0021) sends request_body_text(): the only change to it.
--
-- Cost, per event:
--                                      instructions per event (callgrind, 3 000 events, 0 ms API)
--     before (after 0029)              630 550   claiming backend 396 900, outcome writer 233 600
--     after this file                  584 550   claiming backend 351 400 (-11.5 %), writer 233 200
--   (Measured as 0029's figures. A first version cut the closing brace with left(text, -1): 635 600,
--   no gain, text_left alone 54 000 instructions per event: it counts every character.)
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- The one home of request bodies (0015's header for the rules; p_event, p_merchant, p_mid,
-- p_currency as in 0015). One SQL expression, inlined into the claim's SELECT.
CREATE FUNCTION flexcharge.request_body_text(p_event flexcharge.outbox, p_merchant flexcharge.merchants,
                                             p_mid text, p_currency text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        -- The common transmit or evaluate: the members the outbox adds, then the payload's own text.
        -- Only when the result is the object the rule below builds: no key added here is in the payload
        -- already (below, the added value would replace it), the payload has a member (its text is
        -- '{' then its members), and the event takes no descriptor or call-center fields (below, they
        -- rebuild the payload's "transaction").
        WHEN (p_event).kind IN ('transmit', 'evaluate')
             AND (p_event).descriptor IS NULL
             AND NOT ((p_event).channel = 'cit' AND (p_event).origin = 'call_center')
             AND NOT ((p_event).payload ?| ARRAY['orderId', 'isMIT', 'siteUrl', 'mid', 'idempotencyKey'])
             AND (p_event).payload <> '{}'::jsonb THEN
            '{"orderId": ' || to_json((p_event).order_id)::text
            || ', "isMIT": ' || ((p_event).channel = 'mit')::text
            || CASE WHEN (p_event).site_url IS NOT NULL THEN ', "siteUrl": ' || to_json((p_event).site_url)::text ELSE '' END
            || CASE WHEN p_mid IS NOT NULL THEN ', "mid": ' || to_json(p_mid)::text ELSE '' END
            || CASE WHEN (p_event).kind = 'evaluate' THEN ', "idempotencyKey": ' || to_json((p_event).idempotency_key)::text ELSE '' END
            || ', '
            -- The payload's members: its text after the opening brace, cut by bytes (substr() on text
            -- counts the characters of the whole document first, which costs about what the jsonb
            -- rebuild this avoids; convert_to and convert_from only check the UTF-8, which is fast).
            || convert_from(substring(convert_to((p_event).payload::text, 'UTF8') FROM 2), 'UTF8')
        -- Every other body: 0015's rule, as it was.
        ELSE (
            CASE
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
        )::text
    END
$$;

-- request_body() (0015): the same bodies, as jsonb. CREATE OR REPLACE keeps its grants (worker).
CREATE OR REPLACE FUNCTION flexcharge.request_body(p_event flexcharge.outbox, p_merchant flexcharge.merchants,
                                                   p_mid text, p_currency text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT flexcharge.request_body_text(p_event, p_merchant, p_mid, p_currency)::jsonb
$$;

-- ---------------------------------------------------------------------------------------------
-- claim_for_worker() (0021) with request_body_text(); everything else as it was. CREATE OR REPLACE keeps
-- its grants; its SET clauses are restated (CREATE OR REPLACE resets them to the ones it names).
CREATE OR REPLACE FUNCTION flexcharge.claim_for_worker(p_worker text, p_total integer, p_lane_caps integer[],
                                            p_lease_seconds double precision)
RETURNS TABLE (id bigint, kind text, merchant_id text, order_id text, channel text, origin text, site text,
               idempotency_key text, attempts integer, created_at timestamptz, first_claimed_at timestamptz,
               next_action text, environment text, amount_cents bigint, state text, claim_lane smallint,
               order_session_key text, currency text, refunded_before_cents bigint, request_body text,
               mid text, key_id text, app_key_sealed bytea, app_secret_sealed bytea,
               credentials_updated_at timestamptz, rate_limit_per_second integer)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.id, c.kind, c.merchant_id, c.order_id, c.channel, c.origin, c.site, c.idempotency_key,
           c.attempts, c.created_at, c.first_claimed_at, c.next_action, c.environment,
           c.amount_cents, c.state, c.claim_lane,
           CASE WHEN c.kind IN ('cancel', 'refund', 'capture')
                THEN coalesce(c.order_session_key, c.payload ->> 'orderSessionKey')
                ELSE c.order_session_key END,
           cur.currency,
           CASE WHEN c.kind = 'refund' AND c.next_action = 'lookup' THEN
               (SELECT coalesce(sum(r.amount_cents), 0)::bigint FROM flexcharge.outbox r
                 WHERE r.merchant_id = c.merchant_id AND r.order_id = c.order_id AND r.kind = 'refund'
                   AND r.state = 'succeeded' AND r.id <> c.id
                   AND r.order_session_key IS NOT DISTINCT FROM c.order_session_key) END,
           flexcharge.request_body_text(c, m, mc.mid, cur.currency),  -- 0030
           mc.mid, mc.key_id, mc.app_key_sealed, mc.app_secret_sealed,  -- the API credentials only
           mc.updated_at,
           m.rate_limit_per_second  -- NULL: the rate limiter asks nothing (0020)
      FROM flexcharge.claim(p_worker, p_total, p_lane_caps, make_interval(secs => p_lease_seconds)) c
      LEFT JOIN flexcharge.merchants m ON m.merchant_id = c.merchant_id
      LEFT JOIN flexcharge.merchant_credentials mc
             ON mc.merchant_id = c.merchant_id AND mc.environment = c.environment
      -- A capture's currency: its own, else its order's evaluate's.
     CROSS JOIN LATERAL (
           SELECT CASE WHEN c.kind = 'capture' THEN coalesce(c.currency,
                      (SELECT e.currency FROM flexcharge.outbox e
                        WHERE e.merchant_id = c.merchant_id AND e.order_id = c.order_id AND e.kind = 'evaluate'
                        ORDER BY e.id DESC LIMIT 1)) END AS currency) cur
     WHERE c.state = 'running';
END;
$$;


-- Grants (0012's rules): the new function is not PUBLIC's; the worker calls it (inside claim_for_worker(),
-- which runs with the worker's rights), as it calls request_body() (0015).
REVOKE ALL ON FUNCTION flexcharge.request_body_text(flexcharge.outbox, flexcharge.merchants, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.request_body_text(flexcharge.outbox, flexcharge.merchants, text, text)
    TO flexcharge_worker;
