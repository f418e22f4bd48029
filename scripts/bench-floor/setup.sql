-- The same-run floor of issue 14: a minimal outbox, the least a database can do per event here.
-- A plain table (the transmit's ~1 KB payload, a state, no ledger, no lanes, no routing), one
-- partial index on what is claimable. Load it, then drain it with claim-and-done.sql:
--
--   psql "$DATABASE_URL" -v events=20000 -f scripts/bench-floor/setup.sql
--   pgbench -n -M prepared -c 1 -t 200 -f scripts/bench-floor/claim-and-done.sql "$DATABASE_URL"
--
-- (-t = events / 100: each run of the script claims 100.) Read PostgreSQL's CPU of the cluster's own
-- processes before and after the pgbench run, divide by the events: that is the floor per event.
-- It lives in its own schema, bench_floor, so it never touches flexcharge's tables.
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'pending',
    done_at     timestamptz
);
CREATE INDEX outbox_pending ON bench_floor.outbox (id) WHERE state = 'pending';
INSERT INTO bench_floor.outbox (payload)
SELECT jsonb_build_object('isDeclined', false, 'orderSource', 'ecommerce', 'orderId', 'floor-' || g,
           'transaction', jsonb_build_object('id', 'psp', 'amount', 1500, 'currency', 'USD', 'responseCode', '00'),
           'additionalFields', jsonb_build_array(jsonb_build_object('key', 'note', 'value', repeat('x', 700))))
  FROM generate_series(1, :events) g;
VACUUM ANALYZE bench_floor.outbox;
CHECKPOINT;
