-- 0004_attempts.sql
--
-- The attempt ledger: one row per HTTP call a worker made for an event (and one per lease that
-- expired under a worker that stopped answering). It is written in the same transaction as the
-- event's state change, so the ledger and the outbox always agree. Reports count events, never
-- attempts: a retried event counts once.

CREATE TABLE flexcharge.attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL,            -- flexcharge.outbox.id (no FK: the ledger outlives pruning)
    attempt        integer NOT NULL,           -- the event's attempts counter when this call was made
    action         text NOT NULL,              -- send | lookup | lease_expired | operator_retry | operator_skip
    worker         text NOT NULL,              -- lease owner (host:pid:uuid), or the operator
    environment    text,                       -- sandbox | production
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    latency_ms     double precision,
    http_status    integer,                    -- NULL when no response arrived
    failure_class  text,                       -- NULL on success; retryable | permanent | ambiguous | config | lease_expired
    error          text,                       -- a readable reason; never card data or secrets
    CONSTRAINT attempts_action_valid CHECK (action IN ('send', 'lookup', 'lease_expired', 'operator_retry', 'operator_skip'))
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE flexcharge.attempts IS
    'Every HTTP call made for an outbox event (attempt ledger), written with the event''s state change.';

-- "Show me the attempts of event N" (events show, chaos checks).
CREATE INDEX attempts_by_event ON flexcharge.attempts (event_id, attempt);
