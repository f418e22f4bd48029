-- 0014_outcome_fencing.sql
--
-- No resend after success: an outcome that a worker could not write in time (the database was
-- stopped or unreachable for longer than the lease) must still win over a second send.
--
-- While the database is away, a worker's finished calls wait in its outcome writer, and their
-- leases expire. When the database answers again, another worker's rescue may return those events
-- to 'pending' before the first worker's writer gets its turn. Two rules close that window:
--
--   * the rescue holds a rescued event back for p_hold (the worker passes half its lease, at most
--     5 s) before it can be claimed again;
--   * the writer may still write the outcome of the attempt it made while the event is 'pending'
--     with no lease and last_error_class 'lease_expired', as long as nobody claimed it since
--     (`attempts` still equals that attempt): see OutboxStore.record.
--
-- A worker that really died never writes, so its events come back p_hold after their lease expired.
-- Events other than transmits are looked up before they are sent again anyway (0010), so even a
-- lost race never moves money twice; for transmits the hold is what keeps a duplicate out.
--
-- Also: the writer records each attempt once (a batch committed without its answer reaching the
-- worker and then sent again inserts no second ledger row); that needs no schema change.

DROP FUNCTION flexcharge.rescue_expired_leases(integer);

-- Returns to 'pending' (or 'dead', past p_max_attempts) the running rows whose lease expired,
-- records a 'lease_expired' attempt for each, and holds them back for p_hold. Every event but a
-- transmit is looked up before it is sent again.
CREATE FUNCTION flexcharge.rescue_expired_leases(p_max_attempts integer, p_hold interval DEFAULT interval '0 seconds')
RETURNS integer
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
               next_attempt_at  = now() + p_hold,
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

REVOKE ALL ON FUNCTION flexcharge.rescue_expired_leases(integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.rescue_expired_leases(integer, interval) TO flexcharge_worker;

-- OutboxStore.record checks whether an attempt is already in the ledger (attempt, worker, started_at),
-- and release() whether an event was ever called (action).
GRANT SELECT (event_id, attempt, action, worker, started_at) ON flexcharge.attempts TO flexcharge_worker;
