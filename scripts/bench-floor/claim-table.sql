-- The ladder's simplest claim on the real outbox (see run): the floor's claim (claim-and-done.sql) on
-- flexcharge.outbox, with its indexes, triggers and checks, and nothing of the protocol: one lane and
-- one merchant named outright, no fairness, no per-order order, no routing. It writes what the worker
-- columns' check requires of a running event (a lease). Sets :ids, :attempts, :environments.
WITH claimed AS (
    UPDATE flexcharge.outbox o
       SET state = 'running', attempts = o.attempts + 1, lease_owner = 'ladder',
           lease_expires_at = now() + interval '60 seconds', first_claimed_at = coalesce(o.first_claimed_at, now()),
           environment = 'sandbox', updated_at = now()
      FROM (SELECT id FROM flexcharge.outbox
             WHERE state = 'pending' AND claim_lane = 3 AND merchant_id = 'bench'
             ORDER BY claim_lane, merchant_id, next_attempt_at, id LIMIT 100
               FOR UPDATE SKIP LOCKED) c
     WHERE o.id = c.id
    RETURNING o.id, o.attempts, o.environment, o.payload::text AS body
)
SELECT array_agg(id) AS ids, array_agg(attempts) AS attempts, array_agg(environment) AS environments,
       sum(octet_length(body)) AS bytes
  FROM claimed \gset
