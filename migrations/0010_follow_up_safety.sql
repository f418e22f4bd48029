-- 0010_follow_up_safety.sql
--
-- Money moves once, for every kind of event, not only evaluates.
--
-- A refund, cancel, external cancel or capture whose earlier call may have reached FlexCharge (the
-- connection dropped or timed out after the request was sent, FlexCharge answered 500/502/504, the
-- lease expired under a worker that stopped answering, or an operator requeued it after it was sent)
-- is never sent again before FlexCharge has been asked what happened: its next_action becomes
-- 'lookup', and the worker reads the order at FlexCharge (GET /orders/{id}, or a search by the
-- gateway's order id for an external cancel):
--
--   refund           FlexCharge's refunded amount on the order is compared with the refunds this
--                    outbox has recorded as succeeded for the same order. Equal plus this refund: it
--                    was applied (succeeded, nothing sent). Equal without it: it was not (sent again).
--                    Anything else cannot be settled: the event goes 'dead' with last_error_class
--                    'unresolved' and the amounts in last_error, and is never re-sent blindly.
--                    (Refunds take no idempotency key at FlexCharge; its note that it deduplicates
--                    refunds per order is not relied on.)
--   cancel           the order is CANCELLED: applied. Otherwise sent again with the same key (cancels
--   external_cancel  are idempotent by order id and carry the event's idempotency key).
--   capture          the order is COMPLETED or RETURNED: applied. Still CAPTUREREQUIRED: sent again
--                    with the same idempotency key. Cancelled or expired: failed (nothing to capture).
--                    Anything else: 'dead' / 'unresolved'.
--   evaluate         as before (0005): looked up by the gateway's order id.
--   transmit         never looked up: /transmit is a data feed with no idempotency key; a duplicate
--                    after an ambiguous call costs FlexCharge one duplicated feed row and moves no money.
--
-- Events of one order run one at a time in insert order (claim() below), which is what makes the
-- refund comparison exact: no other refund of the order is in flight while one is looked up.
--
-- This file replaces two functions of 0005:
--   * claim(): a capture, like a cancel or refund, acts on the FlexCharge order its order's
--     evaluate got (order_session_key is filled in at claim).
--   * rescue_expired_leases(): every kind but transmit is looked up after its lease expired.

-- Claims up to p_total events for p_worker (see 0005_claim.sql for the rules: lanes, merchant
-- fairness, per-order order, routing, SKIP LOCKED).
CREATE OR REPLACE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval)
RETURNS SETOF flexcharge.outbox
LANGUAGE plpgsql
-- As 0008 set it: the main statement keeps a generic plan (planning was half the cost of a claim).
SET plan_cache_mode = force_generic_plan
AS $$
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

-- Returns to 'pending' the running rows whose lease expired (their worker died or hung), and
-- records a 'lease_expired' attempt for each. Rows that already used p_max_attempts go 'dead'.
-- Every event but a transmit may have reached FlexCharge: it is looked up before it is sent again.
CREATE OR REPLACE FUNCTION flexcharge.rescue_expired_leases(p_max_attempts integer) RETURNS integer
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
               next_action      = CASE WHEN o.kind = 'transmit' THEN o.next_action ELSE 'lookup' END,
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
