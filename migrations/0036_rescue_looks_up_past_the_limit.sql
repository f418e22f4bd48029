-- 0036_rescue_looks_up_past_the_limit.sql
--
-- A lease that expired during an event's last allowed attempt no longer makes the event dead without
-- asking FlexCharge what happened: an event that is looked up after ambiguity goes to a lookup.
--
-- WHY: a lease expires when its worker stopped or hung (SIGKILL, an out-of-memory kill, a machine lost)
-- during a call. That call may have reached FlexCharge: an evaluate approved and charged, a refund
-- applied. rescue_expired_leases() (0010) made any event dead once attempts >= p_max_attempts, so a
-- worker killed during the last allowed send of an evaluate left it dead; the order FlexCharge approved
-- and charged was then missing from the reports until an operator retried it. The worker's own path
-- already looks such an event up (RetryPolicy.lookupsPastTheLimit, docs/money-safety.md): an ambiguous
-- last send gets up to that many lookups past --max-attempts, and nothing is sent past the limit.
--
-- NOW: rescue_expired_leases() takes p_lookup_limit, the attempts after which even a lookup is given
-- up (the worker passes RetryPolicy.lookupLimit: --max-attempts plus the lookups past it). An event of
-- a kind in p_lookup_kinds becomes dead only at attempts >= p_lookup_limit; below it, it goes back to
-- 'pending' with next_action 'lookup', held back for p_hold as before. The worker that claims it
-- looks it up; past --max-attempts a lookup that finds nothing ends the event dead, and nothing is sent
-- again (EventDelivery). Transmits, never looked up, are dead at attempts >= p_max_attempts as before.
--
-- The attempts ledger row ('lease_expired') and everything else are 0010's.

DROP FUNCTION flexcharge.rescue_expired_leases(integer, interval, text[]);

-- Returns to 'pending' (or 'dead': past p_max_attempts for kinds never looked up, past p_lookup_limit
-- for the kinds in p_lookup_kinds) the running rows whose lease expired, records a 'lease_expired'
-- attempt for each, and holds them back for p_hold. Events of the kinds in p_lookup_kinds (the worker
-- passes ClaimedEvent.Kind.isLookedUpAfterAmbiguity, the rule's one home) are looked up before they are
-- sent again.
CREATE FUNCTION flexcharge.rescue_expired_leases(
    p_max_attempts integer, p_hold interval, p_lookup_kinds text[], p_lookup_limit integer)
RETURNS integer
LANGUAGE sql AS $$
    WITH expired AS (
        SELECT id FROM flexcharge.outbox
         WHERE state = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT 1000
           FOR UPDATE SKIP LOCKED
    ),
    judged AS (
        SELECT o.id, o.kind = ANY (p_lookup_kinds) AS looked_up,
               o.attempts >= CASE WHEN o.kind = ANY (p_lookup_kinds) THEN p_lookup_limit ELSE p_max_attempts END
                   AS given_up
          FROM flexcharge.outbox o JOIN expired e ON e.id = o.id
    ),
    rescued AS (
        UPDATE flexcharge.outbox o
           SET state            = CASE WHEN j.given_up THEN 'dead' ELSE 'pending' END,
               next_action      = CASE WHEN j.looked_up THEN 'lookup' ELSE o.next_action END,
               next_attempt_at  = now() + p_hold,
               last_error_class = 'lease_expired',
               last_error       = format('lease of worker %s expired (worker stopped or hung)', o.lease_owner),
               completed_at     = CASE WHEN j.given_up THEN now() ELSE NULL END,
               lease_owner      = NULL,
               lease_expires_at = NULL,
               updated_at       = now()
          FROM judged j
         WHERE o.id = j.id
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

REVOKE ALL ON FUNCTION flexcharge.rescue_expired_leases(integer, interval, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.rescue_expired_leases(integer, interval, text[], integer) TO flexcharge_worker;
