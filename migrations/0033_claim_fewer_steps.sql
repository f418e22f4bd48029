-- 0033_claim_fewer_steps.sql
--
-- What the worker's claim statement (claim_for_worker(), 0030, around claim(), 0029) costs the gateway's
-- database, per event and per claim (issue 14). Nothing changes in what is claimed, in which order, or
-- what the claim writes or returns: lanes, merchant fairness, per-order order, pauses, breakers,
-- routing, request bodies, currencies and refunded amounts are 0029's and 0030's, rule for rule. What
-- changes is how many rows are copied, how many lookups run per event, and how much plan the executor
-- starts for each claim.
--
-- 1. THE CLAIMED ROWS ARE READ ONCE, BY ADDRESS. claim() returned whole outbox rows through a tuplestore
--    (RETURN QUERY ... RETURNING o.*); claim_for_worker() read them back from it and hashed them (twice:
--    merchants, then credentials, both hash joins over the ~1.3 KB rows), then wrote its own result into
--    a second tuplestore. Now the claim's rules live in a second form of claim(), with a fifth argument:
--    claim(p_worker, p_total, p_lane_caps, p_lease, p_addresses tid[]) claims exactly as claim() did and
--    returns p_addresses followed by the addresses (ctid) of the row versions its UPDATE wrote, in the
--    order it claimed them (RETURNING o.ctid: the new version's address). It keeps the name claim so that
--    claims are still counted under claim in pg_stat_user_functions (PauseTests counts them).
--    claim_for_worker() and the four-argument claim() call it, then read those rows in a statement of
--    their own (a TID scan per row; a new statement sees the versions this transaction just wrote, which
--    stay locked by it until commit: no other session can change or move them in between). claim()
--    returns the same rows in the same order as before. claim_for_worker() returns the same rows and
--    columns; their order within a claim is now the claim's order (before: the hash join's, which nobody
--    relied on). Its merchant and credentials lookups are nested-loop index lookups that the planner
--    memoizes: one lookup per merchant (and environment) of the claim, not per event, and no scan of
--    the merchants or credentials tables on a gateway with many merchants.
--
-- 2. A MERCHANT'S SWITCHES ARE READ ONCE PER MERCHANT. claim()'s routing looked up merchants per claimed
--    event (a primary-key probe per row). The candidate search already runs once per merchant; it now
--    reads the merchant's row there, in the same statement and snapshot, and carries the switches to
--    routing. The per-site switches are still looked up per event (only events with a site find one).
--
-- 3. LESS PLAN STARTED PER CLAIM. PostgreSQL initializes every node of a statement's plan each time
--    the statement runs, including sub-plans that run only for rare events. Five such sub-plans, and
--    the rebuild branch of request_body_text(), were started on every claim although a transmit never
--    uses them; they are now functions, called only for the events that need them, with the same query
--    and the calling statement's snapshot (STABLE):
--      * order_evaluate_currency(): a capture's currency from its order's evaluate (claim_for_worker();
--        the sub-plan was there twice, once for the column and once for the body);
--      * order_refunded_before(): what a refund lookup must subtract (claim_for_worker());
--      * order_evaluate_session_key(): a follow-up's order session key from its evaluate (claim());
--      * paused_narrowly(): the per-candidate check of channel and environment pauses (claim()), only
--        when such a pause is active;
--      * request_body_rebuilt(): 0015's rule for every body that is not the common transmit or evaluate
--        (0030's ELSE branch, word for word); request_body_text() keeps the common path inline.
--    And the claim asks whether a pause is active and whether a breaker holds in one statement
--    instead of two. An event that takes one of these paths pays one function call (a few tens of
--    thousands of instructions); a claim pays for none of them unless one of its events needs it.
--
-- Tried and dropped: claim_for_worker() reading the rows from the four-argument claim() as before, with
-- parts 2 and 3 and nested-loop joins: 461 500 / 558 400 at 100 / 20 events per claim, no gain at 100
-- (without a TID scan's row estimate the planner does not memoize the merchant and credentials
-- lookups, and one index lookup per row costs more than the hash joins did). The merchants of all four
-- lanes in one statement (a cursor over the lanes, instead of one statement per lane): -176 000
-- instructions per claim, but +4 000-5 000 per event claimed (measured, not explained): a loss from
-- about 35 events per claim up. Not changed here: the per-order check (an index probe of
-- outbox_by_order per candidate, about 19 000 instructions per event).
--
-- Cost: instructions of the database's backends under callgrind (deterministic), a single-client
-- pgbench draining 3 000 ~1 KB transmits of one merchant (with credentials) on PostgreSQL 15, autovacuum
-- off: claim_for_worker() then a plain mark-done and attempts insert (e5b), or then record_outcomes()
-- (e4), before (0001-0032) and after this file, in one cluster:
--
--                                       before      after       change
--     e5b, 100 events per claim         460 865     450 123     -10 700 (-2.3 %)
--     e5b,  20 events per claim         569 896     551 845     -18 100 (-3.2 %)
--     e4 (record_outcomes), 100         493 349     483 387     -10 000 (-2.0 %)
--     e5b, 1 event per claim          3 349 641   3 151 532    -198 100
--   From the 100 and 20 rows: a claim costs 2 726 000 -> 2 543 000 instructions fixed, plus 433 600 ->
--   424 700 per event claimed (the whole drain's per-event cost, claim and mark-done). At about 31
--   events per claim (50 ms API latency): 521 500 -> 506 700 per event (-2.8 %).
--   (The pgbench scripts sum the bodies' octet_length, before and after alike.)
--   What remains of the claim is mostly what its UPDATE costs (a non-HOT update of a ~1.3 KB row: the
--   new version, an entry in every index, the column comparisons for HOT), the body's jsonb_out
--   (escape_json alone ~25 000 per event), the per-order probe, and per claim the statements' start
--   (each lane's merchant search, the candidate statement's plan, the outbox's CHECK constraints and
--   trigger conditions read for every UPDATE statement).

-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- Part 3: the rare lookups, as functions.
-- A capture's currency when it has none of its own: its order's latest evaluate's (0021).
CREATE FUNCTION flexcharge.order_evaluate_currency(p_merchant_id text, p_order_id text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.currency FROM flexcharge.outbox e
     WHERE e.merchant_id = p_merchant_id AND e.order_id = p_order_id AND e.kind = 'evaluate'
     ORDER BY e.id DESC LIMIT 1
$$;

-- A follow-up's order session key when it has none of its own: its order's latest evaluate's that has
-- one (claim(), 0010/0029).
CREATE FUNCTION flexcharge.order_evaluate_session_key(p_merchant_id text, p_order_id text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.order_session_key FROM flexcharge.outbox e
     WHERE e.merchant_id = p_merchant_id AND e.order_id = p_order_id
       AND e.kind = 'evaluate' AND e.order_session_key IS NOT NULL
     ORDER BY e.id DESC LIMIT 1
$$;

-- What a refund being looked up must subtract: the order's other succeeded refunds of the same
-- session (0021).
CREATE FUNCTION flexcharge.order_refunded_before(p_event_id bigint, p_merchant_id text, p_order_id text,
                                                 p_order_session_key text)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(r.amount_cents), 0)::bigint FROM flexcharge.outbox r
     WHERE r.merchant_id = p_merchant_id AND r.order_id = p_order_id AND r.kind = 'refund'
       AND r.state = 'succeeded' AND r.id <> p_event_id
       AND r.order_session_key IS NOT DISTINCT FROM p_order_session_key
$$;

-- Whether a narrower pause (a channel, an environment, or both; of one merchant or of all) holds an
-- event: its channel, and the environment routing would give it (the same route_by_switches() call
-- as the claim's routing). 0019's test, called by the claim only while such a pause is active.
CREATE FUNCTION flexcharge.paused_narrowly(p_merchant_id text, p_site text, p_channel text, p_origin text,
                                           p_is_test boolean, p_pause_merchant text[], p_pause_channel text[],
                                           p_pause_environment text[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1
          FROM unnest(p_pause_merchant, p_pause_channel, p_pause_environment) AS p(merchant_id, channel, environment)
         WHERE (p.merchant_id IS NULL OR p.merchant_id = p_merchant_id)
           AND (p.channel IS NULL OR p.channel = flexcharge.switch_of(p_channel, p_origin))
           AND (p.environment IS NULL OR p.environment = (
                SELECT flexcharge.route_by_switches(m.merchant_id IS NOT NULL, p_is_test, p_channel, p_origin,
                                                    m.mit, m.cit_website, m.cit_call_center,
                                                    s.mit, s.cit_website, s.cit_call_center)
                  FROM (SELECT 1) one
                  LEFT JOIN flexcharge.merchants m ON m.merchant_id = p_merchant_id
                  LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = p_merchant_id AND s.site = p_site)))
$$;

-- ---------------------------------------------------------------------------------------------
-- 0015's rule for every body that is not the common transmit or evaluate (0030's ELSE branch, word for
-- word): called by request_body_text() only for those. PL/pgSQL: its one expression is evaluated
-- without starting a plan, and it is not inlined into the claim (which would start it on every claim).
CREATE FUNCTION flexcharge.request_body_rebuilt(p_event flexcharge.outbox, p_merchant flexcharge.merchants,
                                                p_mid text, p_currency text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
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
        )::text;
END;
$$;

-- request_body_text() (0030): the common path as it was; every other body from request_body_rebuilt().
-- CREATE OR REPLACE keeps its grants (worker); request_body() (0030) calls it, unchanged.
CREATE OR REPLACE FUNCTION flexcharge.request_body_text(p_event flexcharge.outbox, p_merchant flexcharge.merchants,
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
        -- Every other body: 0015's rule, as it was, in request_body_rebuilt() (called only for them).
        ELSE flexcharge.request_body_rebuilt(p_event, p_merchant, p_mid, p_currency)
    END
$$;

-- ---------------------------------------------------------------------------------------------
-- claim(p_worker, p_total, p_lane_caps, p_lease, p_addresses): the claim's rules (0029's claim(), with
-- 0019's lanes, fairness, per-order order, pauses, breakers and routing); returns p_addresses followed
-- by the addresses of the row versions it claimed, in the order claimed (part 1). Only the
-- four-argument claim() and claim_for_worker() call it; they set the same planner settings. Changes
-- from 0029's body: parts 2 and 3 of this file's header, and the UPDATE returns the new versions'
-- addresses instead of the rows.
CREATE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval,
                                 p_addresses tid[])
RETURNS tid[]
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET jit = off
-- Every join here is a handful of rows into an index or a row address: with hash or merge joins
-- allowed, the generic plan (which cannot know the candidates are few) hashes the whole pending queue
-- to join the candidates by address (EXPLAIN ANALYZE: a seq scan of 20 000 pending rows per claim).
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    v_lane smallint;
    v_remaining integer := p_total;
    v_take integer;
    v_merchants text[];
    v_held text[];
    v_per_merchant integer;
    v_tids tid[] := p_addresses;
    v_lane_tids tid[];
    v_paused_merchants text[];
    v_pause_merchant text[];
    v_pause_channel text[];
    v_pause_environment text[];
    v_whole_queue boolean;
    v_pausing boolean;
    v_breaking boolean;
BEGIN
    -- Pauses (0019): read once. The whole queue paused: nothing is claimed. A merchant
    -- paused in full: left out like a held merchant below. Narrower pauses (a channel, an
    -- environment, or both, of one merchant or of all): filtered per candidate below, only when
    -- there are any (none in the common case). (Read only when a pause is active: without one, the
    -- aggregates below give no pause, and starting them costs a claim more than looking. Whether a
    -- pause is active and whether a breaker holds are looked up in one statement: 0033.)
    SELECT EXISTS (SELECT 1 FROM flexcharge.pauses p WHERE p.resumed_at IS NULL),
           EXISTS (SELECT 1 FROM flexcharge.circuit_breakers b WHERE b.state <> 'closed' AND b.retry_at > now())
      INTO v_pausing, v_breaking;
    IF v_pausing THEN
        SELECT coalesce(bool_or(p.merchant_id IS NULL AND p.channel IS NULL AND p.environment IS NULL), false),
               array_agg(p.merchant_id) FILTER (WHERE p.merchant_id IS NOT NULL AND p.channel IS NULL AND p.environment IS NULL),
               array_agg(p.merchant_id) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL),
               array_agg(p.channel) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL),
               array_agg(p.environment) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL)
          INTO v_whole_queue, v_paused_merchants, v_pause_merchant, v_pause_channel, v_pause_environment
          FROM flexcharge.pauses p
         WHERE p.resumed_at IS NULL;
    END IF;
    IF v_whole_queue THEN
        RETURN v_tids;
    END IF;

    -- Merchants whose every environment has a breaker holding: none of their events is offered.
    -- Their environments: their own switches and their sites', and the sandbox if they have a
    -- pending test event. Computed only for merchants with a breaker holding (none while
    -- FlexCharge is healthy: then the statement is not even started).
    IF v_breaking THEN
        SELECT array_agg(h.merchant_id) INTO v_held
          FROM (SELECT b.merchant_id, array_agg(b.environment) AS environments
                  FROM flexcharge.circuit_breakers b
                 WHERE b.state <> 'closed' AND b.retry_at > now()
                 GROUP BY b.merchant_id) h
         WHERE NOT EXISTS (
               SELECT 1
                 FROM flexcharge.merchants m
                 LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = m.merchant_id
                CROSS JOIN LATERAL unnest(ARRAY[m.mit::text, m.cit_website::text, m.cit_call_center::text,
                                                s.mit::text, s.cit_website::text, s.cit_call_center::text]) AS r(environment)
                WHERE m.merchant_id = h.merchant_id
                  AND r.environment IS NOT NULL AND r.environment <> 'off'
                  AND r.environment <> ALL (h.environments))
           AND NOT ('sandbox' <> ALL (h.environments)
                    AND EXISTS (SELECT 1 FROM flexcharge.outbox t
                                 WHERE t.merchant_id = h.merchant_id AND t.state = 'pending' AND t.is_test)
                    AND EXISTS (SELECT 1 FROM flexcharge.merchants m WHERE m.merchant_id = h.merchant_id));
    END IF;

    FOR v_lane IN SELECT l.lane FROM flexcharge.lanes l ORDER BY l.lane LOOP
        EXIT WHEN v_remaining <= 0;
        v_take := least(v_remaining, coalesce(p_lane_caps[v_lane + 1], v_remaining));
        CONTINUE WHEN v_take <= 0;

        WITH RECURSIVE active(merchant_id) AS (
            (SELECT o.merchant_id FROM flexcharge.outbox o
              WHERE o.state = 'pending' AND o.claim_lane = v_lane
              ORDER BY o.merchant_id LIMIT 1)
            UNION ALL
            SELECT (SELECT o.merchant_id FROM flexcharge.outbox o
                     WHERE o.state = 'pending' AND o.claim_lane = v_lane AND o.merchant_id > a.merchant_id
                     ORDER BY o.merchant_id LIMIT 1)
              FROM active a WHERE a.merchant_id IS NOT NULL
        )
        SELECT array_agg(merchant_id) INTO v_merchants FROM active
         WHERE merchant_id IS NOT NULL AND (v_held IS NULL OR merchant_id <> ALL (v_held))
           AND (v_paused_merchants IS NULL OR merchant_id <> ALL (v_paused_merchants));
        CONTINUE WHEN v_merchants IS NULL;

        v_per_merchant := ceil(v_take::numeric / cardinality(v_merchants))::integer + 2;

        WITH candidates AS (
            -- Each merchant's row (enrolled or not, and its switches) read once per merchant, here,
            -- not once per event in routed below.
            SELECT c.tid, c.id, c.rank, c.next_attempt_at,
                   a.enrolled, a.mit, a.cit_website, a.cit_call_center
              FROM (SELECT u.merchant_id, m.merchant_id IS NOT NULL AS enrolled,
                           m.mit, m.cit_website, m.cit_call_center
                      FROM unnest(v_merchants) AS u(merchant_id)
                      LEFT JOIN flexcharge.merchants m ON m.merchant_id = u.merchant_id) AS a
             CROSS JOIN LATERAL (
                   SELECT o.ctid AS tid, o.id, o.next_attempt_at,
                          row_number() OVER (ORDER BY o.next_attempt_at, o.id) AS rank
                     FROM flexcharge.outbox o
                    WHERE o.state = 'pending' AND o.claim_lane = v_lane
                      AND o.merchant_id = a.merchant_id AND o.next_attempt_at <= now()
                      -- Per-order order (above), checked before the limit.
                      AND NOT EXISTS (
                          SELECT 1 FROM flexcharge.outbox earlier
                           WHERE earlier.merchant_id = o.merchant_id AND earlier.order_id = o.order_id
                             AND earlier.id < o.id AND earlier.state IN ('pending', 'running')
                             AND (earlier.kind <> 'transmit' OR o.kind = 'transmit'))
                      -- Narrower pauses: the event's channel, and the environment claim() would
                      -- route it to (the same route_by_switches() call as in routed below).
                      AND (v_pause_channel IS NULL
                           OR NOT flexcharge.paused_narrowly(o.merchant_id, o.site, o.channel, o.origin, o.is_test,
                                                             v_pause_merchant, v_pause_channel, v_pause_environment))
                    ORDER BY o.next_attempt_at, o.id
                    LIMIT v_per_merchant) c
        ),
        picked AS (
            -- Each candidate by its row address (no primary-key probe), and what routing needs from it.
            SELECT o.ctid AS tid, o.merchant_id, o.site, o.channel, o.origin, o.is_test,
                   c.enrolled, c.mit, c.cit_website, c.cit_call_center
              FROM flexcharge.outbox o
              JOIN candidates c ON o.ctid = c.tid
             WHERE o.state = 'pending'
             ORDER BY c.rank, c.next_attempt_at, o.id
             LIMIT v_take
               FOR UPDATE OF o SKIP LOCKED
        ),
        routed AS (
            -- The picked rows carry their columns and their merchant's switches: no second read of
            -- the table, no merchant lookup per event.
            SELECT p.tid,
                   flexcharge.route_by_switches(p.enrolled, p.is_test, p.channel, p.origin,
                                                p.mit, p.cit_website, p.cit_call_center,
                                                s.mit, s.cit_website, s.cit_call_center) AS environment
              FROM picked p
              LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = p.merchant_id AND s.site = p.site
        ),
        claimed AS (
        UPDATE flexcharge.outbox o
           SET state            = CASE WHEN r.environment = 'off' THEN 'skipped' ELSE 'running' END,
               environment      = CASE WHEN r.environment = 'off' THEN NULL ELSE r.environment END,
               attempts         = o.attempts + CASE WHEN r.environment = 'off' THEN 0 ELSE 1 END,
               lease_owner      = CASE WHEN r.environment = 'off' THEN NULL ELSE p_worker END,
               lease_expires_at = CASE WHEN r.environment = 'off' THEN NULL ELSE now() + p_lease END,
               first_claimed_at = CASE WHEN r.environment = 'off' THEN o.first_claimed_at
                                       ELSE coalesce(o.first_claimed_at, now()) END,
               last_error_class = CASE WHEN r.environment = 'off' THEN 'config' ELSE o.last_error_class END,
               last_error       = CASE WHEN r.environment = 'off'
                                       THEN format('channel %s is off for merchant %s%s',
                                                   CASE WHEN o.channel = 'mit' THEN 'mit' ELSE 'cit ' || o.origin END,
                                                   o.merchant_id,
                                                   CASE WHEN o.site IS NULL THEN '' ELSE ' (site ' || o.site || ')' END)
                                       ELSE o.last_error END,
               completed_at     = CASE WHEN r.environment = 'off' THEN now() ELSE NULL END,
               order_session_key = CASE WHEN o.kind IN ('cancel', 'refund', 'capture') THEN coalesce(o.order_session_key,
                                       flexcharge.order_evaluate_session_key(o.merchant_id, o.order_id))
                                       ELSE o.order_session_key END,
               updated_at       = now()
          FROM routed r
         WHERE o.ctid = r.tid  -- the row version picked locked (a TID scan, no primary-key probe)
        RETURNING o.ctid AS tid  -- the claimed row version's address
        )
        SELECT array_agg(claimed.tid) INTO v_lane_tids FROM claimed;

        v_tids := v_tids || v_lane_tids;
        v_remaining := v_remaining - coalesce(cardinality(v_lane_tids), 0);
    END LOOP;
    RETURN v_tids;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- claim(): the claimed rows (including those routing skipped), in the order claimed, as before.
-- CREATE OR REPLACE keeps its grants (worker) and restates its SET clauses.
CREATE OR REPLACE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval)
RETURNS SETOF flexcharge.outbox
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    v_tids tid[];
BEGIN
    v_tids := flexcharge.claim(p_worker, p_total, p_lane_caps, p_lease, NULL::tid[]);
    -- A statement of its own: it sees the row versions the claim wrote.
    RETURN QUERY
    SELECT o.*
      FROM unnest(v_tids) WITH ORDINALITY AS a(tid, n)
     CROSS JOIN LATERAL (SELECT r.* FROM flexcharge.outbox r WHERE r.ctid = a.tid OFFSET 0) o
     ORDER BY a.n;
END;
$$;

-- claim_for_worker() (0021, 0030): the same columns for the same rows, read once by address (part 1).
-- CREATE OR REPLACE keeps its grants (worker); its SET clauses are restated, with claim()'s two join
-- settings: its statement joins a handful of rows into indexes or row addresses.
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
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
    v_tids tid[];
BEGIN
    v_tids := flexcharge.claim(p_worker, p_total, p_lane_caps, make_interval(secs => p_lease_seconds), NULL::tid[]);
    -- A statement of its own: it sees the row versions the claim wrote. The subquery (OFFSET 0) keeps
    -- the plan a TID scan per address (else the planner may scan outbox_leases for the running rows and
    -- compare each with every address).
    RETURN QUERY
    SELECT c.id, c.kind, c.merchant_id, c.order_id, c.channel, c.origin, c.site, c.idempotency_key,
           c.attempts, c.created_at, c.first_claimed_at, c.next_action, c.environment,
           c.amount_cents, c.state, c.claim_lane,
           CASE WHEN c.kind IN ('cancel', 'refund', 'capture')
                THEN coalesce(c.order_session_key, c.payload ->> 'orderSessionKey')
                ELSE c.order_session_key END,
           cur.currency,
           CASE WHEN c.kind = 'refund' AND c.next_action = 'lookup' THEN
               flexcharge.order_refunded_before(c.id, c.merchant_id, c.order_id, c.order_session_key) END,
           flexcharge.request_body_text(c, m, mc.mid, cur.currency),
           mc.mid, mc.key_id, mc.app_key_sealed, mc.app_secret_sealed,
           mc.updated_at,
           m.rate_limit_per_second
      FROM unnest(v_tids) AS a(tid)
     CROSS JOIN LATERAL (SELECT o.* FROM flexcharge.outbox o WHERE o.ctid = a.tid OFFSET 0) c
      LEFT JOIN flexcharge.merchants m ON m.merchant_id = c.merchant_id
      LEFT JOIN flexcharge.merchant_credentials mc
             ON mc.merchant_id = c.merchant_id AND mc.environment = c.environment
     CROSS JOIN LATERAL (
           SELECT CASE WHEN c.kind = 'capture'
                       THEN coalesce(c.currency, flexcharge.order_evaluate_currency(c.merchant_id, c.order_id))
                  END AS currency) cur
     WHERE c.state = 'running';
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants (0012's rules): the new functions are not PUBLIC's; the worker calls them (claim() and
-- claim_for_worker() run with the worker's rights). CREATE OR REPLACE keeps the grants of claim(),
-- claim_for_worker() and request_body_text().
REVOKE ALL ON FUNCTION flexcharge.claim(text, integer, integer[], interval, tid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.order_evaluate_currency(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.order_evaluate_session_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.order_refunded_before(bigint, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.paused_narrowly(text, text, text, text, boolean, text[], text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.request_body_rebuilt(flexcharge.outbox, flexcharge.merchants, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.claim(text, integer, integer[], interval, tid[]) TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION flexcharge.order_evaluate_currency(text, text) TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION flexcharge.order_evaluate_session_key(text, text) TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION flexcharge.order_refunded_before(bigint, text, text, text) TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION flexcharge.paused_narrowly(text, text, text, text, boolean, text[], text[], text[])
    TO flexcharge_worker;
GRANT EXECUTE ON FUNCTION flexcharge.request_body_rebuilt(flexcharge.outbox, flexcharge.merchants, text, text)
    TO flexcharge_worker;
