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
-- Events of one order run one at a time in insert order (claim(), 0005), which is what makes the
-- refund comparison exact: no other refund of the order is in flight while one is looked up.
--
-- No resend after success, either: an outcome that a worker could not write in time (the database
-- was stopped or unreachable for longer than the lease) must still win over a second send. While
-- the database is away, a worker's finished calls wait in its outcome writer (their leases are
-- renewed as long as the database answers), and when it answers again another worker's rescue may
-- return those events to 'pending' before the first worker's writer gets its turn. So:
--   * the rescue holds a rescued event back for p_hold (the worker passes half its lease, at most
--     5 s) before it can be claimed again;
--   * the writer may still write the outcome of the attempt it made while the event is 'pending'
--     with no lease and last_error_class 'lease_expired', as long as nobody claimed it since
--     (`attempts` still equals that attempt): see OutboxStore.record, which also records each
--     attempt once (a batch committed without its answer reaching the worker, then sent again,
--     inserts no second ledger row).
-- A worker that really died never writes, so its events come back p_hold after their lease
-- expired. Events other than transmits are looked up before they are sent again anyway, so even a
-- lost race never moves money twice; for transmits the hold is what keeps a duplicate out.
--
-- This file replaces rescue_expired_leases() of 0005 (every kind but transmit is looked up after
-- its lease expired; rescued events are held back). A capture, like a cancel or refund, acts on the
-- FlexCharge order its order's evaluate got: claim() fills in its order_session_key (the current
-- claim() is in 0013_circuit_breaker.sql).

DROP FUNCTION flexcharge.rescue_expired_leases(integer);

-- Returns to 'pending' (or 'dead', past p_max_attempts) the running rows whose lease expired,
-- records a 'lease_expired' attempt for each, and holds them back for p_hold. Events of the kinds in
-- p_lookup_kinds (every kind but transmit: the worker passes ClaimedEvent.Kind.isLookedUpAfterAmbiguity,
-- the rule's one home) are looked up before they are sent again.
CREATE FUNCTION flexcharge.rescue_expired_leases(p_max_attempts integer, p_hold interval, p_lookup_kinds text[])
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
               next_action      = CASE WHEN o.kind = ANY (p_lookup_kinds) THEN 'lookup' ELSE o.next_action END,
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
