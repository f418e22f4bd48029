-- 0014_routing_and_lanes.sql
--
-- Where an event goes and in which order it is taken, each rule stated once:
--   1. test traffic beside live traffic: the column is_test;
--   2. routing: flexcharge.route_by_switches(), asked by route() and claim();
--   3. lanes: the table flexcharge.lanes, mirroring Sources/OutboxEngine/Routing/Lane.swift;
--   4. per-order order: an earlier transmit holds back only later transmits (claim() replaced).
--
-- Never edit this file once applied; add a new numbered file.
--
-- ---------------------------------------------------------------------------------------------
-- TEST TRAFFIC BESIDE LIVE TRAFFIC
--
-- A merchant already live on a channel can still send the transactions of its own test
-- environment to FlexCharge's sandbox: the gateway marks such an event with
--
--   is_test   boolean NOT NULL DEFAULT false   (a contract column: the gateway writes it at insert,
--                                              it is fixed for the event's life like the others)
--
-- A test event of an ENROLLED merchant routes to 'sandbox' whatever the merchant's or the site's
-- switch says (also when the switch is 'off' or 'production'), so it is sent with the merchant's
-- sandbox credentials (claim() joins credentials by the routed environment). A test event of a
-- merchant that is not enrolled stays 'off' (skipped), like any event of an unknown merchant.
-- A merchant without sandbox credentials gets its test events treated as any event routed to an
-- environment it has no credentials for. While the merchant's sandbox circuit breaker holds, its
-- test events wait like any sandbox event (claim()'s breaker filter below, and 0013's layer 2).
-- To tokenize a test order's card with the sandbox key: CardTokenizer.tokenize(..., isTest: true),
-- which asks route(..., is_test) below. Reports keep test and live traffic apart by this column.

ALTER TABLE flexcharge.outbox ADD COLUMN is_test boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN flexcharge.outbox.is_test IS
    'Set by the gateway: a test-environment transaction. Routed to FlexCharge''s sandbox (sandbox credentials) whatever the merchant''s switch, if the merchant is enrolled; see migrations/0014_routing_and_lanes.sql.';

-- Grants (0012's rules): a new contract column is inserted and read back by the gateway and read
-- by the operator; workers read every column (0012) and never write this one.
GRANT INSERT (is_test), SELECT (is_test) ON flexcharge.outbox TO flexcharge_gateway;
GRANT SELECT (is_test) ON flexcharge.outbox TO flexcharge_operator;

-- ---------------------------------------------------------------------------------------------
-- ROUTING: ONE HOME
--
-- Where an event goes ('off', 'sandbox' or 'production') is decided by flexcharge.route_by_switches()
-- below and nowhere else. It is a pure function of the switch values, so both readers ask it:
--   flexcharge.route()   (the tokenizer, the operator) looks the switches up by merchant and site;
--   flexcharge.claim()   (the worker) passes the switches of the rows it already joined.
-- It is LANGUAGE sql IMMUTABLE and a single expression, so PostgreSQL inlines it into claim()'s
-- query: no call and no subquery per claimed row.
--
-- THE RULE, in order:
--   1. A merchant that is not enrolled (no flexcharge.merchants row): 'off'.
--   2. A test event (is_test): 'sandbox', whatever the switches.
--   3. Otherwise the switch of the event's channel and origin:
--        channel mit                 -> mit
--        channel cit, call_center    -> cit_call_center
--        channel cit, anything else  -> cit_website
--      taken from the site's override (merchant_sites row of the event's site, column not NULL),
--      else from the merchant's row.
CREATE FUNCTION flexcharge.route_by_switches(
    p_enrolled boolean, p_is_test boolean, p_channel text, p_origin text,
    p_mit text, p_cit_website text, p_cit_call_center text,
    p_site_mit text, p_site_cit_website text, p_site_cit_call_center text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_enrolled IS NOT TRUE THEN 'off'
        WHEN p_is_test THEN 'sandbox'
        ELSE coalesce(CASE WHEN p_channel = 'mit' THEN coalesce(p_site_mit, p_mit)
                           WHEN p_origin = 'call_center' THEN coalesce(p_site_cit_call_center, p_cit_call_center)
                           ELSE coalesce(p_site_cit_website, p_cit_website) END,
                      'off')
    END
$$;
COMMENT ON FUNCTION flexcharge.route_by_switches(boolean, boolean, text, text, text, text, text, text, text, text) IS
    'The routing rule (off / sandbox / production) from an event''s channel, origin, test flag and its merchant''s and site''s switches. See migrations/0014_routing_and_lanes.sql.';

-- route() with the test flag: the switches of the merchant and of its site, through the rule.
CREATE FUNCTION flexcharge.route(p_merchant_id text, p_site text, p_channel text, p_origin text, p_is_test boolean)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT flexcharge.route_by_switches(m.merchant_id IS NOT NULL, p_is_test, p_channel, p_origin,
                                        m.mit, m.cit_website, m.cit_call_center,
                                        s.mit, s.cit_website, s.cit_call_center)
      FROM (SELECT 1) one
      LEFT JOIN flexcharge.merchants m ON m.merchant_id = p_merchant_id
      LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = m.merchant_id AND s.site = p_site
$$;

-- 0002's route() (live traffic) keeps its signature and grants and asks the same rule.
CREATE OR REPLACE FUNCTION flexcharge.route(p_merchant_id text, p_site text, p_channel text, p_origin text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT flexcharge.route(p_merchant_id, p_site, p_channel, p_origin, false)
$$;

-- ---------------------------------------------------------------------------------------------
-- LANES: ONE HOME
--
-- A lane is where an event queues for claiming; lower lanes are claimed first. The Swift enum
-- Sources/OutboxEngine/Routing/Lane.swift is the home of the lanes (numbers, names, which lanes
-- wake the workers at once); SQL mirrors it here, and Tests/OutboxEngineTests/LaneTests.swift
-- checks that both agree for every kind and channel:
--   flexcharge.lane_of(kind, channel)  (0009)  the lane of an event, set by the insert trigger
--   flexcharge.lanes                   (below) each lane's number and name
-- Readers: claim() claims lane by lane in flexcharge.lanes order; queue_health names lanes from
-- flexcharge.lanes; the insert NOTIFY on 'flexcharge_outbox' (0003, unchanged) carries the most
-- urgent (lowest) lane inserted, as a number, and the worker asks Lane whether it wakes at once.
CREATE TABLE flexcharge.lanes (
    lane   smallint PRIMARY KEY,
    name   text NOT NULL UNIQUE,
    holds  text NOT NULL
);
COMMENT ON TABLE flexcharge.lanes IS
    'Claim lanes, most urgent first; mirrors Sources/OutboxEngine/Routing/Lane.swift. An event''s lane is flexcharge.lane_of(kind, channel).';
INSERT INTO flexcharge.lanes (lane, name, holds) VALUES
    (0, 'cit_evaluate', 'evaluate, channel cit: a shopper is waiting'),
    (1, 'mit_evaluate', 'evaluate, channel mit'),
    (2, 'follow_up',    'cancel, refund, capture, external_cancel'),
    (3, 'transmit',     'transmit: a data feed, fire and forget');

-- Queue health per lane and state, lane names from flexcharge.lanes (columns as in 0006).
CREATE OR REPLACE VIEW flexcharge.queue_health AS
SELECT o.lane,
       l.name                                                          AS lane_name,
       o.state,
       count(*)                                                        AS events,
       min(o.created_at)                                               AS oldest_created_at,
       extract(epoch FROM now() - min(o.created_at))::double precision AS oldest_age_seconds,
       count(*) FILTER (WHERE o.state = 'pending' AND o.attempts > 0)  AS retrying,
       count(*) FILTER (WHERE o.next_action = 'lookup')                AS awaiting_lookup
  FROM flexcharge.outbox o
  JOIN flexcharge.lanes l ON l.lane = o.lane
 WHERE o.state IN ('pending', 'running', 'awaiting_outcome', 'dead')
 GROUP BY o.lane, l.name, o.state;

-- ---------------------------------------------------------------------------------------------
-- PER-ORDER ORDER (replaces 0005's rule)
--
-- An event is claimable only when no EARLIER event of the same order (merchant_id, order_id,
-- smaller id) is pending or running, EXCEPT that an earlier transmit blocks only later
-- transmits:
--   earlier \ later   transmit   evaluate   follow-up (cancel, refund, capture, external_cancel)
--   transmit          waits      -          -
--   evaluate          waits      waits      waits
--   follow-up         waits      waits      waits
-- WHY: /transmit is a fire-and-forget data feed (a copy of a processed transaction) and /evaluate
-- the real-time rescue of a declined checkout; nothing in FlexCharge's contract needs the transmit
-- first. Before this file a transmit that kept failing (5xx, timeouts, backoff up to 300 s) held
-- its order's CIT evaluate for minutes. Follow-ups still wait for their order's earlier evaluate
-- (they need its order_session_key), and a capture for its evaluate's CAPTUREREQUIRED.
-- So an earlier transmit is no longer raised to a later event's lane either (it blocks nothing):
-- inherit_claim_lane() below leaves transmits in lane 3, where they cannot take the room the
-- worker keeps for CIT evaluates.
CREATE OR REPLACE FUNCTION flexcharge.inherit_claim_lane(p_merchant_id text, p_order_id text, p_lane smallint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE flexcharge.outbox
       SET claim_lane = p_lane
     WHERE merchant_id = p_merchant_id AND order_id = p_order_id
       AND state = 'pending' AND claim_lane > p_lane AND p_lane BETWEEN 0 AND 2
       AND kind <> 'transmit';
END;
$$;

-- Pending test events per merchant: claim()'s breaker filter asks whether a merchant has any
-- (they route to the sandbox whatever its switches). Holds only test rows, so it costs live
-- traffic nothing.
CREATE INDEX outbox_pending_test ON flexcharge.outbox (merchant_id) WHERE state = 'pending' AND is_test;

-- claim(): as in 0013 with three changes: routing asks route_by_switches() (with is_test), the
-- per-order order above, and lanes come from flexcharge.lanes. The breaker filter counts the
-- sandbox among a merchant's environments when it has pending test events, so a merchant whose
-- live environment is held still offers its test events while the sandbox is not held, and a
-- held sandbox holds them (layer 2 of 0013 gives back any event claimed anyway).
-- CREATE OR REPLACE keeps the grants of 0012.
CREATE OR REPLACE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval)
RETURNS SETOF flexcharge.outbox
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_lane smallint;
    v_remaining integer := p_total;
    v_take integer;
    v_merchants text[];
    v_held text[];
    v_per_merchant integer;
    v_got integer;
BEGIN
    -- Merchants whose every environment has a breaker holding: none of their events is offered.
    -- Their environments: their own switches and their sites', and the sandbox if they have a
    -- pending test event. Computed only for merchants with a breaker holding (none while
    -- FlexCharge is healthy).
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
         WHERE merchant_id IS NOT NULL AND (v_held IS NULL OR merchant_id <> ALL (v_held));
        CONTINUE WHEN v_merchants IS NULL;

        v_per_merchant := ceil(v_take::numeric / cardinality(v_merchants))::integer + 2;

        RETURN QUERY
        WITH candidates AS (
            SELECT c.id, c.rank, c.next_attempt_at
              FROM unnest(v_merchants) AS a(merchant_id)
             CROSS JOIN LATERAL (
                   SELECT o.id, o.next_attempt_at,
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
                    ORDER BY o.next_attempt_at, o.id
                    LIMIT v_per_merchant) c
        ),
        picked AS (
            SELECT o.id
              FROM flexcharge.outbox o
              JOIN candidates c ON c.id = o.id
             WHERE o.state = 'pending'
             ORDER BY c.rank, c.next_attempt_at, o.id
             LIMIT v_take
               FOR UPDATE OF o SKIP LOCKED
        ),
        routed AS (
            SELECT o.id,
                   flexcharge.route_by_switches(m.merchant_id IS NOT NULL, o.is_test, o.channel, o.origin,
                                                m.mit, m.cit_website, m.cit_call_center,
                                                s.mit, s.cit_website, s.cit_call_center) AS environment
              FROM flexcharge.outbox o
              JOIN picked p ON p.id = o.id
              LEFT JOIN flexcharge.merchants m ON m.merchant_id = o.merchant_id
              LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = o.merchant_id AND s.site = o.site
        )
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
                                       (SELECT e.order_session_key FROM flexcharge.outbox e
                                         WHERE e.merchant_id = o.merchant_id AND e.order_id = o.order_id
                                           AND e.kind = 'evaluate' AND e.order_session_key IS NOT NULL
                                         ORDER BY e.id DESC LIMIT 1))
                                       ELSE o.order_session_key END,
               updated_at       = now()
          FROM routed r
         WHERE o.id = r.id
        RETURNING o.*;

        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_remaining := v_remaining - v_got;
    END LOOP;
END;
$$;

-- Grants (0012's rules) for this file's new objects. route(4) and claim() keep theirs.
--   route_by_switches: called inside route() and claim() as their caller: worker and operator.
--   route(5): the worker (tokenizer) and the operator, like route(4).
--   lanes: claim() reads it as the worker; the view queue_health (kept grants) reads it as its owner;
--          the names are no secret: every role may read them.
REVOKE ALL ON FUNCTION flexcharge.route_by_switches(boolean, boolean, text, text, text, text, text, text, text, text),
                       flexcharge.route(text, text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.route_by_switches(boolean, boolean, text, text, text, text, text, text, text, text),
                          flexcharge.route(text, text, text, text, boolean)
    TO flexcharge_worker, flexcharge_operator;
GRANT SELECT ON flexcharge.lanes TO flexcharge_gateway, flexcharge_worker, flexcharge_operator;
