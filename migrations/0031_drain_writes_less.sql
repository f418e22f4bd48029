-- 0031_drain_writes_less.sql
--
-- What the gateway's database pays per drained event for the two worker updates (the claim's pending ->
-- running, the outcome's running -> done), issue 14. Nothing changes in what is refused, claimed,
-- notified or recorded; three things change in how the table checks and indexes those updates.
--
-- 1. THE TWO UPDATE GUARDS BECOME AFTER TRIGGERS. outbox_immutable (0003/0015: the gateway's columns never
--    change) and outbox_worker_columns_valid (0028: 0003's three CHECK constraints on the worker's
--    columns) were BEFORE UPDATE row triggers. Neither fires for a worker update (the first only for a
--    statement that sets a gateway column, the second only for a row that breaks a rule), but while a
--    table has ANY BEFORE UPDATE row trigger, PostgreSQL first re-reads every updated row for it
--    (GetTupleForTrigger: a copy of the 1.2 KB row) and, for a statement that did not lock the row
--    already (the outcome writer), locks it a second time (heap_lock_tuple and its WAL record) before it
--    looks at the trigger's column list or WHEN condition. That was 24 000 of about 564 000
--    instructions per event (claim 7 400, outcome 16 800).
--    As AFTER UPDATE row triggers, with the same functions, the same column list (outbox_immutable) and
--    the same WHEN condition (outbox_worker_columns_valid), they see the same OLD and NEW rows and raise
--    the same errors (SQLSTATE 23514, the same message and constraint name: SchemaTests); an AFTER row
--    trigger runs at the end of its statement and its error rolls the whole statement back (with any
--    NOTIFY it queued), so nothing they refuse is ever committed, as before. The WHEN condition is
--    evaluated as each row is written, so a row that breaks no rule queues nothing. Two differences,
--    neither reachable by a lawful statement: a statement that breaks a rule is refused when it ends,
--    not at the offending row (the same statement is refused either way); and an UPDATE that sets
--    dedupe_key to another event's key is refused by the unique index outbox_dedupe (23505) before the
--    immutability trigger can say so (23514): refused either way. No BEFORE UPDATE trigger remains on
--    flexcharge.outbox; a future one would bring the cost back (say so in its file).
--
-- 2. ONE BRIN INDEX ON created_at INSTEAD OF TWO. outbox_created_brin (0003: created_at, for the event
--    search's old time windows) and outbox_by_day (0018/0021: the UTC day, for the daily report's `day`
--    range) were two BRIN indexes over the same column. Both updates of an event are non-HOT (0021's
--    header), so each inserted into both (a BRIN insert reads its revmap and summary page even when the
--    summary does not change). One BRIN index with both columns serves both readers (a BRIN scan uses
--    the summaries of the columns the query restricts, each on its own; checked with EXPLAIN: the report's
--    day range, the search's created_at window, RetentionTests' plan). It keeps the name outbox_by_day.
--    The gateway's insert also does one BRIN insert less. Building it reads the table once (on a large
--    table: a quiet hour; BRIN builds are fast).
--
-- 3. THE TRIGGER CONDITIONS' VALUE LISTS AS ARRAY CONSTANTS. PostgreSQL stores a WHEN condition as a node
--    tree in text and reads it again (stringToNode, then plans it) in every statement that updates
--    the table: the claim's UPDATE once per claim, the outcome writer's once per batch. `x IN ('a', 'b')`
--    is stored as an array constructor with one node per value; `x = ANY ('{a,b}'::text[])` is one
--    array constant (the same test, the same result for every value, NULL included). The two WHEN
--    conditions of outbox_worker_columns_valid and outbox_notify_done shrink from 5 800 to 4 100
--    characters: about 45 000 instructions less per statement (a fixed cost of each claim and each
--    outcome batch: at 16 events per claim, -4 300 instructions per event). outbox_notify_done is
--    otherwise the same trigger (0003): same columns, same condition, same function.
--
-- Cost, per event: instructions of the database's backends under callgrind (deterministic to about
-- 0.2 %), `flexcharge-outbox bench-sql --throwaway-database-marks-every-pending-event-succeeded` (the
-- worker's SQL without HTTP, 64 events per claim, 0 ms) draining 3 000 ~1 KB transmits of one merchant,
-- PostgreSQL 15 with autovacuum off, the cluster run under valgrind, before and after in one cluster:
--
--                                      total       claiming backend    outcome writer
--     before (0001-0030)               563 900     337 500             226 400
--     part 2 alone                     557 800     336 600             221 200
--     part 1 alone                     539 700     330 100             209 600
--     parts 1 and 2                    535 600     324 800             210 800
--   The whole file, alternating before/after in one run (two runs each):
--     before, 64 events per claim      565 800 / 563 100   340 700 / 340 400   225 100 / 222 700
--     after                            536 900 / 534 700   326 300 / 326 200   210 500 / 208 500
--     before, 16 events per claim      721 000             459 700             261 200
--     after                            692 100             441 900             250 100
--   So -28 700 instructions per event (-5.1 %): the claim -14 300, the outcome write -14 400, at any
--   claim size (the claim's fixed cost 2.54 M -> 2.47 M per claim, its cost per event 300 900 -> 287 700).
--   (Both guards had to move: with outbox_worker_columns_valid AFTER and outbox_immutable still BEFORE
--   it was 564 000, no gain. With no guard trigger at all, 533 300: the AFTER guards cost 6 400 per event.)
--   The same floor as README's (claim 100 with SKIP LOCKED, mark done, no ledger) is about 189 000.
--   WAL per event (same drain, 3 000 events after a CHECKPOINT, two runs each): 4 513-4 523 -> 4 454-4 477 bytes
--   (the outcome writer no longer writes a row-lock record before each update).

-- NEW FUNCTIONS AND GRANTS (0012's rules): none; triggers and indexes need no grants.
--
-- Never edit this file once applied; add a new numbered file.

-- ---------------------------------------------------------------------------------------------
-- 1. The update guards as AFTER UPDATE row triggers (functions unchanged: 0015/0032's outbox_immutable(),
--    0028's outbox_worker_columns_valid()).
DROP TRIGGER outbox_immutable ON flexcharge.outbox;
CREATE TRIGGER outbox_immutable
    AFTER UPDATE OF kind, merchant_id, order_id, channel, origin, payload, idempotency_key, site_url, descriptor,
                    dedupe_key, is_test
    ON flexcharge.outbox FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_immutable();

-- The condition is 0003's three CHECK constraints (0028); like a CHECK, a NULL passes here (and is
-- refused by the column's NOT NULL, checked as the row is written, before this trigger).
-- (The value lists are array constants: see 3 in the header.)
DROP TRIGGER outbox_worker_columns_valid ON flexcharge.outbox;
CREATE TRIGGER outbox_worker_columns_valid AFTER UPDATE ON flexcharge.outbox
    FOR EACH ROW
    WHEN (NOT (NEW.next_action = ANY ('{send,lookup}'::text[])
               AND (NEW.state <> 'running' OR (NEW.lease_owner IS NOT NULL AND NEW.lease_expires_at IS NOT NULL))
               AND NEW.state = ANY ('{pending,running,succeeded,awaiting_outcome,failed,skipped,dead}'::text[])))
    EXECUTE FUNCTION flexcharge.outbox_worker_columns_valid();

-- ---------------------------------------------------------------------------------------------
-- 3. outbox_notify_done (0003; function 0015, unchanged): the same trigger, its state list an array constant.
DROP TRIGGER outbox_notify_done ON flexcharge.outbox;
CREATE TRIGGER outbox_notify_done AFTER UPDATE OF state, decision ON flexcharge.outbox
    FOR EACH ROW
    WHEN (NEW.kind <> 'transmit'
          AND NEW.state = ANY ('{succeeded,awaiting_outcome,failed,skipped,dead}'::text[])
          AND (OLD.state IS DISTINCT FROM NEW.state OR OLD.decision IS DISTINCT FROM NEW.decision))
    EXECUTE FUNCTION flexcharge.outbox_notify_done();

-- ---------------------------------------------------------------------------------------------
-- 2. One BRIN index for created_at and its UTC day.
DROP INDEX flexcharge.outbox_by_day;
DROP INDEX flexcharge.outbox_created_brin;
CREATE INDEX outbox_by_day ON flexcharge.outbox USING brin (created_at, ((created_at AT TIME ZONE 'UTC')::date));
