-- 0005_claim.sql
--
-- How workers take work. Many workers on many machines share the table; they coordinate only
-- through row locks and leases:
--
--  1. flexcharge.claim() picks pending rows with FOR UPDATE SKIP LOCKED, so concurrent workers
--     never wait for each other and never take the same row, marks them 'running' with a lease
--     (owner, expiry) and commits BEFORE any HTTP call is made.
--  2. The worker records the outcome later (in batches) only if it still owns the lease.
--  3. flexcharge.rescue_expired_leases() returns the rows of a worker that died (lease expired)
--     to 'pending'. The claim already counted as an attempt, so a row that kills its worker ends
--     'dead' after max attempts instead of looping forever.

-- Claims up to p_total events for p_worker, lanes in priority order:
--   lane 0 CIT evaluate (a shopper is waiting), 1 MIT evaluate, 2 follow-ups, 3 transmit.
-- p_lane_caps[lane + 1] caps how many a lane may take in this call (the worker keeps a few
-- slots for lane 0 so that a transmit backlog never fills every slot).
-- Within a lane, merchants take turns: each active merchant's oldest events come first, so one
-- merchant's backlog cannot starve the others.
-- An event is claimable only when no earlier event of the same order is pending or running
-- (per-order order: transmit before evaluate before follow-ups); other orders are not blocked.
-- Events whose channel resolves to 'off' are marked 'skipped' here and never returned.
CREATE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval)
RETURNS SETOF flexcharge.outbox
LANGUAGE plpgsql AS $$
DECLARE
    v_lane smallint;
    v_remaining integer := p_total;
    v_take integer;
    v_merchants text[];
    v_per_merchant integer;
    v_got integer;
BEGIN
    FOR v_lane IN 0..3 LOOP
        EXIT WHEN v_remaining <= 0;
        v_take := least(v_remaining, coalesce(p_lane_caps[v_lane + 1], v_remaining));
        CONTINUE WHEN v_take <= 0;

        -- Merchants with pending work in this lane, by a loose index scan of outbox_claim:
        -- one index probe per active merchant, however many rows each has queued.
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
        SELECT array_agg(merchant_id) INTO v_merchants FROM active WHERE merchant_id IS NOT NULL;
        CONTINUE WHEN v_merchants IS NULL;

        -- Each merchant offers its share (plus slack for rows another worker holds); the oldest
        -- heads win across merchants.
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
                      -- Per-order order, checked BEFORE the limit: an event waiting for an earlier
                      -- event of its order must not take a place in the window, or a window full of
                      -- waiting events would stall the merchant (seen in the chaos suite).
                      AND NOT EXISTS (
                          SELECT 1 FROM flexcharge.outbox earlier
                           WHERE earlier.merchant_id = o.merchant_id AND earlier.order_id = o.order_id
                             AND earlier.id < o.id AND earlier.state IN ('pending', 'running'))
                    ORDER BY o.next_attempt_at, o.id
                    LIMIT v_per_merchant) c
        ),
        picked AS (
            -- SKIP LOCKED: rows another worker is claiming right now are simply passed over.
            SELECT o.id
              FROM flexcharge.outbox o
              JOIN candidates c ON c.id = o.id
             WHERE o.state = 'pending'
             ORDER BY c.rank, c.next_attempt_at, o.id
             LIMIT v_take
               FOR UPDATE OF o SKIP LOCKED
        ),
        routed AS (
            -- The same resolution as flexcharge.route(), written as a join: a function call per
            -- row would run its own query for each event (measured: most of the claim's cost).
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
               -- A follow-up acts on the FlexCharge order its order's evaluate got. Read here, in the
               -- snapshot that just found the evaluate finished (a later statement could miss it).
               order_session_key = CASE WHEN o.kind IN ('cancel', 'refund') THEN coalesce(o.order_session_key,
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

-- Returns to 'pending' the running rows whose lease expired (their worker died or hung), and
-- records a 'lease_expired' attempt for each. Rows that already used p_max_attempts go 'dead'.
-- An evaluate that may have reached FlexCharge is resolved by an order lookup before it is
-- sent again. Any worker may call this; SKIP LOCKED lets several do so at once.
CREATE FUNCTION flexcharge.rescue_expired_leases(p_max_attempts integer) RETURNS integer
LANGUAGE sql AS $$
    WITH expired AS (
        SELECT id FROM flexcharge.outbox
         WHERE state = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT 1000
           FOR UPDATE SKIP LOCKED
    ),
    rescued AS (
        UPDATE flexcharge.outbox o
           SET state            = CASE WHEN o.attempts >= p_max_attempts THEN 'dead' ELSE 'pending' END,
               next_action      = CASE WHEN o.kind = 'evaluate' THEN 'lookup' ELSE o.next_action END,
               next_attempt_at  = now(),
               last_error_class = 'lease_expired',
               last_error       = format('lease of worker %s expired (worker stopped or hung)', o.lease_owner),
               completed_at     = CASE WHEN o.attempts >= p_max_attempts THEN now() ELSE NULL END,
               lease_owner      = NULL,
               lease_expires_at = NULL,
               updated_at       = now()
          FROM expired e
         WHERE o.id = e.id
        RETURNING o.id, o.attempts, o.environment, o.last_error
    ),
    ledger AS (
        INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at,
                                         finished_at, failure_class, error)
        SELECT r.id, r.attempts, 'lease_expired', 'rescuer', r.environment, now(), now(), 'lease_expired', r.last_error
          FROM rescued r
        RETURNING 1
    )
    SELECT count(*)::integer FROM ledger
$$;
