-- The ladder's attempt ledger (see run): each claimed event's ledger row, as the worker's outcome
-- writer writes it (one multi-row INSERT a batch).
INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at, finished_at,
                                 latency_ms, http_status)
SELECT t.id, t.attempt, 'send', 'ladder', 'sandbox', now(), now(), 1.5, 200
  FROM unnest(:ids::bigint[], :attempts::integer[]) AS t(id, attempt);
