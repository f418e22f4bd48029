-- 0021_claim_cost.sql
--
-- What the worker's statements cost the gateway's database, per event (issue 14). Nothing here changes
-- what is claimed, in which order, or what an outcome does: claim() (0019) keeps every rule (lanes,
-- fairness, per-order order, pauses, breakers, routing); the two functions below hold the worker's
-- claim and outcome statements unchanged, so PostgreSQL plans them once per connection instead of on
-- every call.
--
-- Measured with `flexcharge-outbox bench-sql` (the worker's SQL, no HTTP) on a 20 000-transmit drain,
-- PostgreSQL 15, fsync on, one merchant; PostgreSQL CPU of the cluster's own processes per event, and
-- pg_stat_statements (track = all) for the statements. One run, on a 2-core machine shared with
-- other work (so read the rows against each other, not as absolutes):
--
--                                                0 ms API   50 ms API (bench-sql --latency-ms 50)
--   before, jit = on (the server default)        1 610 µs   -
--   before, jit = off                              170 µs   258 µs
--   after                                          137 µs   155 µs
--   floor: claim 100 SKIP LOCKED, mark done     29-37 µs   (scripts/bench-floor)
--
-- WAL per event 4 736 -> 4 587 bytes (0 ms), 5 740 -> 4 564 (50 ms). The causes, in the order they cost:
--
-- 1. JIT. claim()'s main statement has a generic plan (0008) whose estimated cost is above
--    jit_above_cost (100 000) as soon as a few thousand events are pending, so PostgreSQL compiled it
--    with LLVM on every call: about 110 ms per claim (auto_explain: "JIT: Functions: 117, Emission
--    94 ms"), against 2 to 5 ms to run it; 1 600 µs of CPU per event on a server where jit = on (the
--    default of PostgreSQL 12 and later, wherever the LLVM package is installed). A claim is a short
--    OLTP statement: it never profits from JIT. Off for claim() and for the functions below, whatever
--    the server's setting (a function's SET applies only while it runs).
--
-- 2. Planning on every call. The worker sent its claim query (claim() joined to the merchant, its
--    credentials, the request body, 0015) and its outcome statement (the batch of outcomes and the
--    attempt-ledger rows, one statement) as unnamed statements: parsed, analysed and planned on every
--    call, about 0.3 to 0.5 ms each. At 0 ms a claim carries 64 events; at 50 ms a claim carries 32
--    and an outcome batch about 13 (the writer gathers 10 ms), where planning was the largest part of
--    the cost per event. Inside a PL/pgSQL function a statement is planned once per connection and
--    its plan kept (force_generic_plan: the shape does not depend on the values, as in 0008).
--
-- 3. One B-tree less to maintain on every update. Both updates of an event (claim: pending ->
--    running, outcome: running -> final) are non-HOT and stay so: `state` is in the predicate of the
--    claim index and of the lease, awaiting, unfinished and pending-test indexes, and PostgreSQL 15
--    allows a HOT update only when no indexed column (predicates included) changes. So every update
--    inserts a new entry into every index over all rows: the primary key, outbox_by_order (both
--    needed on the hot path), the BRIN on created_at (nearly free: a summarized range that already
--    covers the value is not written), and outbox_by_day (0018), a B-tree on the UTC day that only
--    the daily report reads. outbox_by_day becomes a BRIN on the same expression, under the same
--    name: the report's `day BETWEEN ...` still reads it (a bitmap scan of the day's page ranges;
--    ids, created_at and the physical order grow together), and updates and the gateway's inserts
--    stop paying a B-tree insert for it. (Rebuilding it reads the table once: on a large table, run
--    this migration in a quiet hour.) fillfactor 80 (0003) already leaves room on each page.
--
-- Not changed, and why (for whoever looks next):
--   * The request body is built once, at claim, in request_body() (0015's figures).
--   * NOTIFY: transmits never notify (0003's trigger skips them); an evaluate's done-notification is
--     what a checkout LISTENs for.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 1. No JIT for claim() (its body is 0019's, unchanged).
ALTER FUNCTION flexcharge.claim(text, integer, integer[], interval) SET jit = off;

-- ---------------------------------------------------------------------------------------------
-- 2a. The worker's claim (OutboxStore.claim): claim() and, per claimed event, what the worker needs
-- to call FlexCharge: the request body (request_body(), 0015), the API credentials of the routed
-- environment (sealed: the worker opens them), the merchant's rate limit (0020), a follow-up's
-- FlexCharge order id and a capture's currency (its order's evaluate's), and for a refund looked up
-- after an ambiguous call what this outbox has already refunded on the same FlexCharge order (0010).
-- Only events claimed to run are returned (claim() also finishes events whose channel is off as
-- 'skipped').
CREATE FUNCTION flexcharge.claim_for_worker(p_worker text, p_total integer, p_lane_caps integer[],
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
           flexcharge.request_body(c, m, mc.mid, cur.currency)::text,
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
COMMENT ON FUNCTION flexcharge.claim_for_worker(text, integer, integer[], double precision) IS
    'The worker''s claim: claim() plus request bodies, credentials and rate limits. See migrations/0021_claim_cost.sql.';

-- ---------------------------------------------------------------------------------------------
-- 2b. The worker's outcomes (OutboxStore.record; Worker/CompletionWriter.swift writes them in batches):
-- one statement, one transaction per batch, for the events' new states and their attempt-ledger rows.
--
-- An outcome is written only for the attempt it belongs to (`attempts` still equals the completion's
-- attempt) and only while no other worker can have taken the event over: still 'running' under this
-- worker's lease, or its lease expired and the rescue returned it to 'pending' but nobody has claimed
-- it since (the rescue holds it back a few seconds for exactly this, 0010). Otherwise the event keeps
-- its state and only the attempt is recorded. With p_retrying (the batch was sent before and its
-- answer lost: it may be committed), completions whose ledger row exists are skipped and their ids
-- count as written, so a batch sent twice records nothing twice.
--
-- Returns the ids whose outcome is in place. The arrays are one per field, one element per completion.
CREATE FUNCTION flexcharge.record_outcomes(
    p_worker text, p_ids bigint[], p_attempts integer[], p_actions text[], p_environments text[],
    p_started_at timestamptz[], p_finished_at timestamptz[], p_latency_ms double precision[],
    p_http_statuses integer[], p_failure_classes text[], p_errors text[], p_states text[], p_next_actions text[],
    p_retry_at timestamptz[], p_transaction_keys text[], p_order_session_keys text[], p_decisions text[],
    p_field_errors jsonb[], p_retrying boolean)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_ids, p_attempts, p_actions, p_environments, p_started_at, p_finished_at,
                             p_latency_ms, p_http_statuses, p_failure_classes, p_errors, p_states,
                             p_next_actions, p_retry_at, p_transaction_keys, p_order_session_keys,
                             p_decisions, p_field_errors)
            AS t(id, attempt, action, environment, started_at, finished_at, latency_ms, http_status,
                 failure_class, error, state, next_action, retry_at, transaction_key,
                 order_session_key, decision, field_errors)
    ),
    fresh AS (
        -- Completions not recorded yet (a retried batch may have been committed already).
        SELECT i.* FROM input i
         WHERE NOT p_retrying
            OR NOT EXISTS (SELECT 1 FROM flexcharge.attempts a
                            WHERE a.event_id = i.id AND a.attempt = i.attempt AND a.worker = p_worker
                              AND a.started_at = i.started_at)
    ),
    ledger AS (
        INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at,
                                         finished_at, latency_ms, http_status, failure_class, error)
        SELECT f.id, f.attempt, f.action, p_worker, f.environment, f.started_at, f.finished_at, f.latency_ms,
               f.http_status, f.failure_class, f.error
          FROM fresh f
    ),
    written AS (
        UPDATE flexcharge.outbox o
           SET state             = i.state,
               next_action       = i.next_action,
               next_attempt_at   = coalesce(i.retry_at, o.next_attempt_at),
               lease_owner       = NULL,
               lease_expires_at  = NULL,
               transaction_key   = coalesce(i.transaction_key, o.transaction_key),
               order_session_key = coalesce(i.order_session_key, o.order_session_key),
               decision          = coalesce(i.decision, o.decision),
               last_http_status  = i.http_status,
               last_error_class  = i.failure_class,
               last_error        = i.error,
               field_errors      = i.field_errors,
               completed_at      = CASE WHEN i.state = 'pending' THEN NULL ELSE now() END,
               updated_at        = now()
          FROM fresh i
         WHERE o.id = i.id AND o.attempts = i.attempt
           AND ((o.state = 'running' AND o.lease_owner = p_worker)
                OR (o.state = 'pending' AND o.lease_owner IS NULL AND o.last_error_class = 'lease_expired'))
        RETURNING o.id
    )
    SELECT w.id FROM written w
    UNION ALL
    SELECT i.id FROM input i WHERE i.id NOT IN (SELECT f.id FROM fresh f);
END;
$$;
COMMENT ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                               double precision[], integer[], text[], text[], text[], text[],
                                               timestamptz[], text[], text[], text[], jsonb[], boolean) IS
    'The worker''s outcomes and attempt-ledger rows, one batch per call. See migrations/0021_claim_cost.sql.';

-- ---------------------------------------------------------------------------------------------
-- 3. outbox_by_day: a BRIN (see 3 in the header). Indexes need no grants.
DROP INDEX flexcharge.outbox_by_day;
CREATE INDEX outbox_by_day ON flexcharge.outbox USING brin (((created_at AT TIME ZONE 'UTC')::date));

-- ---------------------------------------------------------------------------------------------
-- Grants (0012's rules): new functions are not PUBLIC's; the worker calls both. They run with the
-- worker's own rights (not SECURITY DEFINER), which already cover every table they touch.
REVOKE ALL ON FUNCTION flexcharge.claim_for_worker(text, integer, integer[], double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.claim_for_worker(text, integer, integer[], double precision) TO flexcharge_worker;
REVOKE ALL ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                                  double precision[], integer[], text[], text[], text[], text[],
                                                  timestamptz[], text[], text[], text[], jsonb[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                                     double precision[], integer[], text[], text[], text[], text[],
                                                     timestamptz[], text[], text[], text[], jsonb[], boolean) TO flexcharge_worker;
