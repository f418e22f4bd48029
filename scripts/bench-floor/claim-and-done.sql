-- One round of the minimal outbox (see setup.sql): claim 100 pending rows with FOR UPDATE SKIP
-- LOCKED (committed: the lease is taken before any call), then mark them done. Two transactions,
-- as a minimal worker does; the claimed rows' payloads are returned as text, as a worker reads them.
WITH claimed AS (
    UPDATE bench_floor.outbox o SET state = 'running'
      FROM (SELECT id FROM bench_floor.outbox WHERE state = 'pending' ORDER BY id LIMIT 100
               FOR UPDATE SKIP LOCKED) c
     WHERE o.id = c.id
    RETURNING o.id, o.payload::text AS body
)
SELECT array_agg(id) AS ids, sum(length(body)) AS bytes FROM claimed \gset
UPDATE bench_floor.outbox SET state = 'done', done_at = now() WHERE id = ANY (:ids::bigint[]);
