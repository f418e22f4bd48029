-- 0019_pause.sql
--
-- Pause and resume: an operator holds back events without losing them. A pause names a scope:
--
--   merchant_id   one merchant, or NULL for every merchant
--   channel       'mit' | 'cit_website' | 'cit_call_center' (the merchant's switches), or NULL for all
--   environment   'sandbox' | 'production' (where claim() would route the event), or NULL for both
--
-- All three NULL pauses the whole queue. A paused event is never claimed: it stays 'pending' with
-- its attempts, next_attempt_at and environment untouched (not skipped, no attempt spent) and goes
-- out when the pause is resumed. Events already running when a pause starts finish as usual.
-- A paused environment is judged by the route claim() would take (route_by_switches(), 0014), so a
-- test event paused under 'sandbox' waits like the merchant's sandbox traffic.
--
-- The table is its own audit: a row is never deleted; resuming sets resumed_at/resumed_by/
-- resume_reason. The active pauses are the rows with resumed_at IS NULL, at most one per scope.
-- Written by the CLI (`flexcharge-outbox pause`, `resume`; Sources/OutboxEngine/Operations/
-- PauseBoard.swift), shown by `pauses` and `status`. Resuming NOTIFYs flexcharge_outbox so workers
-- claim at once.
--
-- Cost: claim() reads the active pauses once per call (an empty index scan in the common case);
-- only narrower pauses add a filter per candidate row.
--
-- Never edit this file once applied; add a new numbered file.

CREATE TABLE flexcharge.pauses (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id    text,
    channel        text,
    environment    text,
    reason         text NOT NULL,
    paused_by      text NOT NULL,
    paused_at      timestamptz NOT NULL DEFAULT now(),
    resumed_by     text,
    resumed_at     timestamptz,
    resume_reason  text,
    CONSTRAINT pauses_channel_valid CHECK (channel IN ('mit', 'cit_website', 'cit_call_center')),
    CONSTRAINT pauses_environment_valid CHECK (environment IN ('sandbox', 'production')),
    CONSTRAINT pauses_reason_given CHECK (btrim(reason) <> '' AND btrim(paused_by) <> ''),
    CONSTRAINT pauses_resumed_whole CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
);
-- One active pause per scope (NULL, "all", compared as a value here).
CREATE UNIQUE INDEX pauses_active_scope ON flexcharge.pauses
    (coalesce(merchant_id, ''), coalesce(channel, ''), coalesce(environment, '')) WHERE resumed_at IS NULL;
COMMENT ON TABLE flexcharge.pauses IS
    'Operator pauses (merchant/channel/environment, NULL = all) and their resumes: paused events stay pending. See migrations/0019_pause.sql.';

-- The switch an event's channel and origin fall under ('mit', 'cit_website', 'cit_call_center'):
-- the names a pause's channel uses. One expression, inlined by PostgreSQL where it is called:
-- claim() below, and the CLI's `pauses` and `replay-skipped`.
CREATE FUNCTION flexcharge.switch_of(p_channel text, p_origin text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_channel = 'mit' THEN 'mit' ELSE 'cit_' || p_origin END
$$;

-- claim(): as in 0014 with the pause filter added (everything else identical). CREATE OR REPLACE
-- keeps the grants of 0012.
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
    v_paused_merchants text[];
    v_pause_merchant text[];
    v_pause_channel text[];
    v_pause_environment text[];
    v_whole_queue boolean;
BEGIN
    -- Pauses (this file's header): read once. The whole queue paused: nothing is claimed. A merchant
    -- paused in full: left out like a held merchant below. Narrower pauses (a channel, an
    -- environment, or both, of one merchant or of all): filtered per candidate below, only when
    -- there are any (none in the common case).
    SELECT coalesce(bool_or(p.merchant_id IS NULL AND p.channel IS NULL AND p.environment IS NULL), false),
           array_agg(p.merchant_id) FILTER (WHERE p.merchant_id IS NOT NULL AND p.channel IS NULL AND p.environment IS NULL),
           array_agg(p.merchant_id) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL),
           array_agg(p.channel) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL),
           array_agg(p.environment) FILTER (WHERE p.channel IS NOT NULL OR p.environment IS NOT NULL)
      INTO v_whole_queue, v_paused_merchants, v_pause_merchant, v_pause_channel, v_pause_environment
      FROM flexcharge.pauses p
     WHERE p.resumed_at IS NULL;
    IF v_whole_queue THEN
        RETURN;
    END IF;

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
         WHERE merchant_id IS NOT NULL AND (v_held IS NULL OR merchant_id <> ALL (v_held))
           AND (v_paused_merchants IS NULL OR merchant_id <> ALL (v_paused_merchants));
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
                      -- Narrower pauses: the event's channel, and the environment claim() would
                      -- route it to (the same route_by_switches() call as in routed below).
                      AND (v_pause_channel IS NULL OR NOT EXISTS (
                          SELECT 1
                            FROM unnest(v_pause_merchant, v_pause_channel, v_pause_environment) AS p(merchant_id, channel, environment)
                           WHERE (p.merchant_id IS NULL OR p.merchant_id = o.merchant_id)
                             AND (p.channel IS NULL OR p.channel = flexcharge.switch_of(o.channel, o.origin))
                             AND (p.environment IS NULL OR p.environment = (
                                  SELECT flexcharge.route_by_switches(m.merchant_id IS NOT NULL, o.is_test, o.channel, o.origin,
                                                                      m.mit, m.cit_website, m.cit_call_center,
                                                                      s.mit, s.cit_website, s.cit_call_center)
                                    FROM (SELECT 1) one
                                    LEFT JOIN flexcharge.merchants m ON m.merchant_id = o.merchant_id
                                    LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = o.merchant_id AND s.site = o.site))))
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

-- Grants (0012's rules): the operator pauses and resumes (and reads the history); the worker reads
-- the table (claim() runs as the worker). No DELETE for anyone: the rows are the audit.
GRANT SELECT, INSERT ON flexcharge.pauses TO flexcharge_operator;
GRANT UPDATE (resumed_by, resumed_at, resume_reason) ON flexcharge.pauses TO flexcharge_operator;
GRANT SELECT ON flexcharge.pauses TO flexcharge_worker;
REVOKE ALL ON FUNCTION flexcharge.switch_of(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.switch_of(text, text) TO flexcharge_worker, flexcharge_operator;
