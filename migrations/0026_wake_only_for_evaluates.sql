-- 0026_wake_only_for_evaluates.sql
--
-- The insert NOTIFY on 'flexcharge_outbox' is sent only where a worker acts on it: when an
-- evaluate is inserted (lanes 0 and 1, cit_evaluate and mit_evaluate). Issue 14.
--
-- WHY. Until now 0003's statement trigger sent one notification for every INSERT or COPY, whatever
-- its kind, carrying the most urgent lane inserted. The worker wakes at once only for lanes 0 and 1
-- (Sources/OutboxEngine/Routing/Lane.swift, `wakesAtOnce`); for a transmit or a follow-up it
-- ignored the notification and claimed at its next poll. The notification was not free for the
-- gateway, though:
--   * a transaction that has sent a NOTIFY takes PostgreSQL's global notify-queue lock while it
--     commits, so every gateway transaction that wrote an event committed one after another
--     (scripts/bench --only commits measured plain inserts falling to 28 % of their rate with it);
--   * the statement trigger built a transition table of the inserted rows (about 36 000
--     instructions for a one-row INSERT, scripts/bench-insert).
-- Transmits are about nine events in ten, and none of them needs to wake anyone.
--
-- WHAT CHANGES FOR A LISTENER. 'flexcharge_outbox' now carries '0' when a CIT evaluate was
-- inserted and '1' when an MIT evaluate was (one notification per lane per transaction:
-- PostgreSQL folds identical notifications of one transaction). An insert of transmits, refunds,
-- cancels or captures sends none; workers claim them at their next poll (`worker
-- --poll-interval-ms`, 1 000 by default) or sooner when they are busy, since a busy worker claims
-- again as soon as it has room. The gateway never needed to LISTEN on this channel; its channel
-- for outcomes is 'flexcharge_event_done' (0003/0015), which this migration does not touch.
--
-- The lanes that wake are mirrored from Lane.wakesAtOnce; LaneTests checks that they agree.
-- The trigger function needs no EXECUTE grant (0012: checked when the trigger is created).

DROP TRIGGER outbox_notify_insert ON flexcharge.outbox;
DROP FUNCTION flexcharge.outbox_notify_insert();

CREATE FUNCTION flexcharge.outbox_notify_evaluate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flexcharge_outbox', NEW.lane::text);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION flexcharge.outbox_notify_evaluate() IS
    'Wakes the workers at the gateway''s commit when an evaluate (lane 0 or 1) is inserted; payload is the lane. See migrations/0026_wake_only_for_evaluates.sql.';

-- A row trigger with a WHEN condition: for a transmit or a follow-up the condition is false and
-- nothing runs at all (no function call, no transition table).
CREATE TRIGGER outbox_notify_evaluate AFTER INSERT ON flexcharge.outbox
    FOR EACH ROW WHEN (NEW.lane <= 1)
    EXECUTE FUNCTION flexcharge.outbox_notify_evaluate();

-- Like every function of the schema, not executable by PUBLIC (RoleTests checks it).
REVOKE ALL ON FUNCTION flexcharge.outbox_notify_evaluate() FROM PUBLIC;
