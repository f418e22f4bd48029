-- 0034_record_outcomes_first_send.sql
--
-- The outcome writer's statement, flexcharge.record_outcomes() (0021_claim_cost.sql), does less work for a
-- batch sent for the first time (issue 14: the gateway's database pays it for every finished event). What
-- it writes, refuses and returns is unchanged; only two steps that cannot change the answer of a first
-- send are skipped.
--
-- 1. THE "ALREADY RECORDED" BRANCH RUNS ONLY FOR A RETRIED BATCH. The function returns the ids whose outcome
--    is in place: those it updated, plus (second branch of the UNION ALL) the completions that were not
--    fresh, i.e. whose ledger row a retried batch found already committed. For a first send
--    (p_retrying false) every completion is fresh (fresh's WHERE begins with NOT p_retrying), so that
--    branch returned no row, but PostgreSQL still built a hash of every fresh id and probed it with every
--    input id (the hashed NOT IN subplan). `p_retrying AND ...` is a condition on a parameter alone:
--    the planner turns it into a one-time filter, so a first send skips the branch, and a retried batch
--    runs it exactly as before.
--
-- 2. THE INPUT IS NOT COPIED. `input` (the unnest of the arrays) was used twice (by fresh and by that
--    branch), so PostgreSQL materialized it: every completion copied into a tuplestore and read back.
--    NOT MATERIALIZED lets fresh read the unnest directly (and the retried branch unnest again: unnest is
--    immutable, the same rows come back). fresh stays materialized: the ledger insert, the update and
--    the branch all read it, and they must see the same rows.
--
-- Measured (callgrind of the cluster's backends under valgrind, `flexcharge-outbox bench-sql` at 0 ms, 3 000
-- ~1 KB transmits, 64 per claim, autovacuum off, the same binary (1fd3213, with the binary array parameters),
-- databases alternated): the writing backend's hashed NOT IN (ExecSubPlan) 2 300 instructions per
-- event -> 0, the CTE copies (tuplestore_puttupleslot) 2 830 -> 2 640; the whole function
-- (fmgr_security_definer, inclusive) 167.8 k / 170.0 k -> 164.5 k / 167.0 k per event. About 3 k of the
-- writer's 198 k, within the run-to-run spread of whole drains (writer 195-200 k): small, but it is work
-- the answer never needed.
--
-- Same signature, so CREATE OR REPLACE keeps the owner and the grants of 0021 (0012's rules: not PUBLIC's,
-- flexcharge_worker executes it); they are restated below so this file reads on its own.

CREATE OR REPLACE FUNCTION flexcharge.record_outcomes(
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
    WITH input AS NOT MATERIALIZED (
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
    -- Only a retried batch can have completions that are not fresh (see 0034's header, 1).
    SELECT i.id FROM input i WHERE p_retrying AND i.id NOT IN (SELECT f.id FROM fresh f);
END;
$$;
COMMENT ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                               double precision[], integer[], text[], text[], text[], text[],
                                               timestamptz[], text[], text[], text[], jsonb[], boolean) IS
    'The worker''s outcomes and attempt-ledger rows, one batch per call. See migrations/0021_claim_cost.sql and 0034_record_outcomes_first_send.sql.';

REVOKE ALL ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                                  double precision[], integer[], text[], text[], text[], text[],
                                                  timestamptz[], text[], text[], text[], jsonb[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.record_outcomes(text, bigint[], integer[], text[], text[], timestamptz[], timestamptz[],
                                                     double precision[], integer[], text[], text[], text[], text[],
                                                     timestamptz[], text[], text[], text[], jsonb[], boolean) TO flexcharge_worker;
