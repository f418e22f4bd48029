-- 0013_circuit_breaker.sql
--
-- Outages pause, they don't kill: a circuit breaker per merchant and FlexCharge environment,
-- shared by every worker through this table.
--
-- WHY: before this file a FlexCharge outage spent the attempts of every event it touched (12
-- attempts, backoff capped at 300 s, lookups spending attempts too): 7 to 14 minutes of outage
-- turned every event into 'dead'. Now, once FlexCharge fails for everyone, workers stop calling
-- it for that merchant and environment, probe it at a slow rate, and resume by themselves.
--
-- STATES (the rules live in one place, Sources/OutboxEngine/Breaker/CircuitBreaker.swift; this
-- table only stores what the workers decided, each change a compare-and-set on `version`):
--   closed     events flow. `failures` counts consecutive outage failures (connect errors,
--              resets, timeouts, 5xx: never a merchant's own 4xx, never 429, which carries its
--              own Retry-After). A success resets it; a failure more than the failure window
--              after the previous one starts the count again at 1.
--   open       `failures` reached the threshold (default 5). No event of the merchant and
--              environment is sent or looked up until `retry_at`.
--   half_open  one worker (probe_owner) won the compare-and-set and makes ONE probe call (a
--              read-only order search with the merchant's credentials) until `retry_at` (its
--              probe lease). Success: closed. Failure or lease lost: open again until the next
--              probe time. So each breaker gets at most one probe call at a time across all
--              workers, one per probe interval (default 30 s).
--
-- HOW EVENTS ARE HELD WITHOUT SPENDING ATTEMPTS (two layers):
--   1. claim() (below) does not offer a merchant whose every routed environment has a breaker
--      holding (open or half_open, retry_at in the future). Cost per claim: one index scan of
--      circuit_breakers_holding, which is empty while FlexCharge is healthy; the per-lane
--      merchant scan and the per-event statements are unchanged.
--   2. An event claimed anyway (prefetched before the breaker opened, or of a merchant that
--      routes its channels to two environments and only one is held) is given back by the
--      worker before any call: pending again, its claim not counted as an attempt, due at the
--      breaker's next probe time, last_error_class 'breaker'. No attempt-ledger row is written
--      (the ledger records calls, and none was made). Its first_claimed_at (where FlexCharge's
--      idempotency window starts at the latest) is cleared only if the ledger shows no call ever
--      made for it, so a hold never restarts the window of an event that may have reached
--      FlexCharge.
--
-- The view flexcharge.breakers is what status, metrics and the gateway's ops read.
--
-- Never edit this file once applied; add a new numbered file.

CREATE TABLE flexcharge.circuit_breakers (
    merchant_id      text NOT NULL,
    environment      text NOT NULL,
    state            text NOT NULL DEFAULT 'closed',
    -- Consecutive outage failures seen while closed.
    failures         integer NOT NULL DEFAULT 0,
    last_failure_at  timestamptz,
    -- A readable reason (route, class, HTTP status); never card data or secrets.
    last_error       text,
    -- Times the breaker opened (a probe failing counts again), for the operator's eye.
    trips            integer NOT NULL DEFAULT 0,
    opened_at        timestamptz,
    -- open: when the next probe may go; half_open: when the probe's lease ends.
    retry_at         timestamptz,
    probe_owner      text,
    closed_at        timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Compare-and-set guard: every change is UPDATE ... WHERE version = <the version read>.
    version          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, environment),
    CONSTRAINT circuit_breakers_environment_valid CHECK (environment IN ('sandbox', 'production')),
    CONSTRAINT circuit_breakers_state_valid CHECK (state IN ('closed', 'open', 'half_open')),
    CONSTRAINT circuit_breakers_retry_at CHECK (state = 'closed' OR retry_at IS NOT NULL)
);
COMMENT ON TABLE flexcharge.circuit_breakers IS
    'Circuit breaker per merchant and FlexCharge environment, shared by all workers. See migrations/0013_circuit_breaker.sql.';

-- What claim() reads on every call: empty while FlexCharge is healthy.
CREATE INDEX circuit_breakers_holding ON flexcharge.circuit_breakers (merchant_id) WHERE state <> 'closed';

-- One row per breaker that exists (a breaker is created at its first outage failure), with
-- how many events it is holding right now.
CREATE VIEW flexcharge.breakers AS
SELECT b.merchant_id,
       b.environment,
       b.state,
       b.failures,
       b.trips,
       b.opened_at,
       b.retry_at,
       b.probe_owner,
       b.last_failure_at,
       b.last_error,
       b.closed_at,
       b.updated_at,
       CASE WHEN b.state = 'closed' THEN 0 ELSE
           (SELECT count(*) FROM flexcharge.outbox o
             WHERE o.state = 'pending' AND o.merchant_id = b.merchant_id
               AND (o.environment IS NULL OR o.environment = b.environment)) END::bigint AS pending_events
  FROM flexcharge.circuit_breakers b;
COMMENT ON VIEW flexcharge.breakers IS
    'Circuit breakers per merchant and environment: closed, open (not calling FlexCharge until retry_at) or half_open (one probe in flight).';

-- claim(): as in 0005, plus a capture's order_session_key (0010) and the breaker filter (layer 1
-- above). Everything else is unchanged: see 0005_claim.sql for lanes, merchant fairness, per-order order,
-- routing and SKIP LOCKED. CREATE OR REPLACE keeps the grants of 0012.
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
    -- Merchants whose every environment (of their own switches and their sites') has a breaker
    -- holding: none of their events is offered. A merchant with one environment held and another
    -- not is offered; the worker gives back what the breaker holds (layer 2).
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
              AND r.environment <> ALL (h.environments));

    FOR v_lane IN 0..3 LOOP
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
                      AND NOT EXISTS (
                          SELECT 1 FROM flexcharge.outbox earlier
                           WHERE earlier.merchant_id = o.merchant_id AND earlier.order_id = o.order_id
                             AND earlier.id < o.id AND earlier.state IN ('pending', 'running'))
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
                   coalesce(CASE WHEN o.channel = 'mit' THEN coalesce(s.mit, m.mit)
                                 WHEN o.origin = 'call_center' THEN coalesce(s.cit_call_center, m.cit_call_center)
                                 ELSE coalesce(s.cit_website, m.cit_website) END,
                            'off') AS environment
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

-- Grants (0012's rules). No new function: claim() is replaced and keeps its grants.
--   flexcharge_worker    reads and writes breakers (reports outcomes, claims probes), reads the view.
--   flexcharge_operator  reads the view (status) and the table; it changes nothing here: a breaker
--                        closes by itself when a probe succeeds.
GRANT SELECT, INSERT, UPDATE ON flexcharge.circuit_breakers TO flexcharge_worker;
-- Giving back a held event clears its first_claimed_at only when the ledger shows no call was
-- ever made for it (BreakerStore.holdBack): the worker reads which actions an event has had.
GRANT SELECT (event_id, action) ON flexcharge.attempts TO flexcharge_worker;
GRANT SELECT ON flexcharge.circuit_breakers TO flexcharge_operator;
GRANT SELECT ON flexcharge.breakers TO flexcharge_worker, flexcharge_operator;
