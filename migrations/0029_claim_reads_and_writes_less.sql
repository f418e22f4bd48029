-- 0029_claim_reads_and_writes_less.sql
--
-- The claim's cost per event in the gateway's database (issue 14), in three parts; nothing changes in
-- what is claimed, in which order, or what the claim writes: lanes, fairness, per-order order, pauses,
-- breakers and routing are 0019's, word for word.
--
-- 1. ONE B-TREE ENTRY LESS PER CLAIM. outbox_unfinished (0018) held every row in 'pending', 'running',
--    'awaiting_outcome' or 'dead', for queue_health (`status`, the worker's gauges, the console's queue
--    page). Both updates of an event are non-HOT (0021's header: `state` is in five partial-index
--    predicates), so the claim (pending -> running) inserted a new entry here for every event, only for
--    `status` to count running rows, which outbox_leases (0003: lease_expires_at WHERE state =
--    'running') holds already: the claim inserts into that one anyway. So outbox_unfinished drops
--    'running', and queue_health reads running rows through outbox_leases: the view's columns, rows and
--    meaning are unchanged (a UNION ALL of two index-backed parts), and `status` still costs what the
--    live queue is, not what the history is (RetentionTests plans it with seq scans off). The gateway's
--    insert is unchanged (a new row is 'pending': one entry here, as before). The CLI's and console's
--    event search by state = 'running' is served by outbox_leases. Rebuilding the index reads the table
--    once (on a large table: a quiet hour).
--
-- 2. CLAIM() READS EACH CLAIMED ROW ONCE. Its main statement found the candidates in outbox_claim, then
--    joined the table by `id` three more times: `picked` (to lock each candidate), `routed` (to read the
--    columns routing needs) and the UPDATE (to write it): three primary-key descents per event. Now the
--    candidates carry their row address (ctid) from the index scan, `picked` locks the row at that
--    address (a TID scan: one heap tuple, no index descent) and returns the columns routing needs,
--    `routed` reads only those, and the UPDATE writes the row version `picked` locked, by its address.
--    Safe under concurrency (many workers, SKIP LOCKED, as before):
--      * a candidate another worker claimed after this statement's snapshot: `picked` finds its newer
--        version locked (skipped) or committed and re-checks it (READ COMMITTED): no longer 'pending',
--        not picked. As before.
--      * a candidate updated but still 'pending' since the snapshot (the insert trigger raised its
--        claim_lane, an operator's retry): `picked` locks the newer version, which the UPDATE's snapshot
--        cannot see at that address, so the UPDATE leaves it alone: it stays pending and unclaimed, its
--        lock ends with the transaction, the next claim takes it (before: claimed at once). Nothing is
--        claimed twice or lost; claim() returns the rows it updated (RETURNING), as before.
--    The joins are a few rows each into an index or a row address; the generic plan cannot know the
--    candidates are few and hashed the whole pending queue to join them by address (a seq scan of
--    20 000 rows per claim, EXPLAIN ANALYZE), so claim() plans without hash and merge joins.
--
-- 3. PAUSES AND BREAKERS ARE READ ONLY WHEN THERE ARE ANY. Every claim ran the pause query (five
--    aggregates) and the breaker query (two aggregates, a grouping, three sub-plans) although both
--    find nothing while no pause is active and FlexCharge is healthy; starting those statements is a
--    fixed cost of every claim, which weighs most at 50 ms API latency, where a claim carries ~30
--    events. Each is now preceded by an EXISTS probe and run only when it finds something; the
--    variables they set keep the values they had when nothing was found (NULL), so the rest of
--    claim() is unchanged. A claim on an empty queue: 1 536 000 -> 1 397 000 instructions; the fixed
--    cost of a claim (from the cost per event at 64 and at 16 events per claim): 2 750 000 -> 2 580 000.
--    (Skipping empty lanes with an EXISTS probe per lane was tried and dropped: the probe walks
--    outbox_claim's stale entries a second time, +33 000 instructions per event.)
--
-- Cost, per event: instructions of the database's backends under callgrind (deterministic), and CPU of
-- the cluster (noisy on this shared 2-core machine), `flexcharge-outbox bench-sql` (the worker's SQL
-- without HTTP) draining ~1 KB transmits of one merchant, PostgreSQL 15, fsync on, before and after in
-- one run:
--
--                                      instructions per event          PostgreSQL CPU per event
--                                      (callgrind, 3 000 events)       (20 000 events, 9 pairs)
--     before (0001-0027)               653 000-655 000                 median 146 µs
--       claiming backend                 420 000
--       outcome writer                   233 000-235 000
--     after parts 1 and 2              630 550                         median 138.5 µs
--       claiming backend                 396 900   (-5.5 %)
--       outcome writer                   233 600   (unchanged)
--     after this file and 0030         583 900 (64 events per claim), 750 200 (16 per claim)
--       claiming backend                 349 900; per claim 2 580 000 fixed + 309 600 per event
--       (before: 2 750 000 fixed + 375 900 per event; at ~30 events per claim, 50 ms API: -12 %)
--   Instructions: every backend of the two bench-sql connections, the cluster run under valgrind
--   (autovacuum off), 0 ms API. CPU: the cluster's processes only, alternating before/after on a
--   machine at load 2.3-5.6 (two other helpers building Swift): single runs vary by +-30 µs, after was
--   lower in 7 pairs of 9. WAL per event about 4 590 -> 4 510-4 570 bytes.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 1. outbox_unfinished without 'running'; queue_health reads running rows through outbox_leases.
DROP INDEX flexcharge.outbox_unfinished;
CREATE INDEX outbox_unfinished ON flexcharge.outbox (lane, state)
    WHERE state IN ('pending', 'awaiting_outcome', 'dead');

-- queue_health (columns as in 0014): unfinished and dead events per lane and state. The running
-- rows come from the lease index, the others from outbox_unfinished.
CREATE OR REPLACE VIEW flexcharge.queue_health AS
SELECT o.lane,
       l.name                                                          AS lane_name,
       o.state,
       count(*)                                                        AS events,
       min(o.created_at)                                               AS oldest_created_at,
       extract(epoch FROM now() - min(o.created_at))::double precision AS oldest_age_seconds,
       count(*) FILTER (WHERE o.state = 'pending' AND o.attempts > 0)  AS retrying,
       count(*) FILTER (WHERE o.next_action = 'lookup')                AS awaiting_lookup
  FROM (SELECT u.lane, u.state, u.created_at, u.attempts, u.next_action
          FROM flexcharge.outbox u
         WHERE u.state IN ('pending', 'awaiting_outcome', 'dead')
        UNION ALL
        SELECT r.lane, r.state, r.created_at, r.attempts, r.next_action
          FROM flexcharge.outbox r
         WHERE r.state = 'running') o
  JOIN flexcharge.lanes l ON l.lane = o.lane
 GROUP BY o.lane, l.name, o.state;


-- ---------------------------------------------------------------------------------------------
-- 2. claim(): 0019's body (0021 added jit = off, kept here: CREATE OR REPLACE resets a function's SET
-- clauses to the ones it names) with the row addresses above. CREATE OR REPLACE keeps the grants of 0012.
CREATE OR REPLACE FUNCTION flexcharge.claim(p_worker text, p_total integer, p_lane_caps integer[], p_lease interval)
RETURNS SETOF flexcharge.outbox
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET jit = off
-- Every join in claim() is a handful of rows into an index or a row address: with hash or merge joins
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
    -- there are any (none in the common case). (Read only when a pause is active: without one, the
    -- aggregates below give no pause, and starting them costs a claim more than looking.)
    IF EXISTS (SELECT 1 FROM flexcharge.pauses p WHERE p.resumed_at IS NULL) THEN
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
        RETURN;
    END IF;

    -- Merchants whose every environment has a breaker holding: none of their events is offered.
    -- Their environments: their own switches and their sites', and the sandbox if they have a
    -- pending test event. Computed only for merchants with a breaker holding (none while
    -- FlexCharge is healthy: then the statement is not even started).
    IF EXISTS (SELECT 1 FROM flexcharge.circuit_breakers b WHERE b.state <> 'closed' AND b.retry_at > now()) THEN
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

        RETURN QUERY
        WITH candidates AS (
            SELECT c.tid, c.id, c.rank, c.next_attempt_at
              FROM unnest(v_merchants) AS a(merchant_id)
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
            -- Each candidate by its row address (no primary-key probe), and what routing needs from it.
            SELECT o.ctid AS tid, o.merchant_id, o.site, o.channel, o.origin, o.is_test
              FROM flexcharge.outbox o
              JOIN candidates c ON o.ctid = c.tid
             WHERE o.state = 'pending'
             ORDER BY c.rank, c.next_attempt_at, o.id
             LIMIT v_take
               FOR UPDATE OF o SKIP LOCKED
        ),
        routed AS (
            -- The picked rows carry their columns: no second read of the table.
            SELECT p.tid,
                   flexcharge.route_by_switches(m.merchant_id IS NOT NULL, p.is_test, p.channel, p.origin,
                                                m.mit, m.cit_website, m.cit_call_center,
                                                s.mit, s.cit_website, s.cit_call_center) AS environment
              FROM picked p
              LEFT JOIN flexcharge.merchants m ON m.merchant_id = p.merchant_id
              LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = p.merchant_id AND s.site = p.site
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
         WHERE o.ctid = r.tid  -- the row version picked locked (a TID scan, no primary-key probe)
        RETURNING o.*;

        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_remaining := v_remaining - v_got;
    END LOOP;
END;
$$;

-- Grants (0012's rules): CREATE OR REPLACE keeps the grants of claim() (worker) and of the view
-- queue_health (worker and operator SELECT); indexes need none. No new function.
