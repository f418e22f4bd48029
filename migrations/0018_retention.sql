-- 0018_retention.sql
--
-- Retention: finished history is deleted once it is old enough, so the tables stop growing and
-- the views that read them (daily_report, queue_health, ...) read a bounded table. The pruner is
-- `flexcharge-outbox prune` and, by default, one worker at a time (a session-level advisory lock
-- elects it; Sources/OutboxEngine/Retention/). It calls the functions below in small batches, each
-- its own short transaction, walking each table once per pass by id (ids grow with time).
--
-- WHAT IS DELETED, AND WHEN (the ages are the caller's settings, never below the floors here):
--   outbox            whole orders only. An order (merchant_id, order_id) goes when every one of
--                     its events is final (succeeded, skipped, failed, dead: any other state,
--                     pending, running, awaiting_outcome or one added later, keeps the whole order)
--                     and its last change (updated_at) is older than
--                       rescued    when it holds money: an evaluate decided APPROVED, or a
--                                  succeeded capture or refund (a refund, cancellation or
--                                  chargeback may still come: a later refund event needs the
--                                  evaluate's FlexCharge order id);
--                       failed     else when an event failed or is dead (kept for investigation);
--                       completed  else (succeeded and skipped events).
--                     The order's outcome_events rows go with it (same transaction). An order whose
--                     rows another transaction holds (an operator's retry) is left for the next pass.
--   attempts          the ledger: a row goes only once its event is no longer in the outbox (the
--                     worker and `retry` read an event's ledger to decide whether FlexCharge may
--                     already know it) and its call is older than the ledger retention.
--   outcome_events    those of a pruned event go with it; those matching no event (event_id NULL:
--                     unknown orders, refused deliveries) after the `failed` retention.
--   merchant_audit    after the audit retention (at least 365 days: PCI DSS asks for a year).
--   webhook_nonces    after the nonce window (the receiver refuses stale dates anyway; it also
--                     removes a few per delivery, which stops when webhooks stop).
-- Nothing is archived here: a deployment that must keep more exports before (docs/retention.md).
-- daily_report and the money views read the outbox, so they cover the days still retained.
--
-- WHO PRUNES: flexcharge_worker, through these SECURITY DEFINER functions (owned by the owner,
-- search_path pinned). No role gets DELETE on outbox, attempts, outcome_events or merchant_audit:
-- the functions are the only way, and their rules (final orders only, the floors, the ledger
-- outliving its event) hold whatever the caller passes, so a worker login can delete only history
-- it could never act on again. The worker role, not the operator's: pruning is a scheduled
-- machine task that runs with the workers (or as `prune` with a worker login, like `reconcile`),
-- and an operator who may flip merchant switches needs no power to erase history.
--
-- prune_outbox and prune_history return how many rows they deleted and the id to continue after
-- (NULL when the walk reached rows too young to delete, or the end); prune_webhook_nonces returns
-- how many it deleted (fewer than asked: done).

-- The report reads one UTC day range of created_at; the BRIN index cannot serve that expression,
-- this one can (timezone(text, timestamptz) and the date cast are immutable).
CREATE INDEX outbox_by_day ON flexcharge.outbox (((created_at AT TIME ZONE 'UTC')::date));

-- rescued_orders and money_adjustments (under daily_report and order_money) read every evaluate
-- that was routed; this index holds exactly those rows, so they never scan the whole history.
CREATE INDEX outbox_evaluates ON flexcharge.outbox (merchant_id, environment, order_session_key)
    WHERE kind = 'evaluate' AND environment IS NOT NULL;

-- queue_health (`status`, the worker's gauges) reads unfinished and dead events only: this index
-- holds exactly those rows, so status costs what the live queue is, not what the history is.
CREATE INDEX outbox_unfinished ON flexcharge.outbox (lane, state)
    WHERE state IN ('pending', 'running', 'awaiting_outcome', 'dead');

-- The final states: everything else is live. One home for the list (inlined where it is used:
-- it names no table, so it needs no pinned search_path).
CREATE FUNCTION flexcharge.is_final_state(p_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_state IN ('succeeded', 'skipped', 'failed', 'dead') $$;

-- ---------------------------------------------------------------------------------------------
-- outbox (with the pruned events' outcome_events)

CREATE FUNCTION flexcharge.prune_outbox(
    p_after_id  bigint,     -- continue after this event id (0 to start a pass)
    p_scan      integer,    -- events looked at in this call (1 to 5000)
    p_completed interval,   -- orders of succeeded/skipped events only (at least 1 day)
    p_failed    interval,   -- orders with a failed or dead event (at least 1 day)
    p_rescued   interval    -- orders with money (at least 1 day)
) RETURNS TABLE (orders integer, events integer, outcomes integer, next_after_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_completed interval := greatest(p_completed, interval '1 day');
    v_failed    interval := greatest(p_failed, interval '1 day');
    v_rescued   interval := greatest(p_rescued, interval '1 day');
    v_youngest  timestamptz := now() - least(v_completed, v_failed, v_rescued);
    v_last      bigint;
    v_oldest    timestamptz;
    v_order     record;
    v_ids       bigint[];
    v_total     integer;
    v_outcomes  integer;
BEGIN
    orders := 0; events := 0; outcomes := 0;
    IF p_scan IS NULL OR p_scan NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'prune_outbox: p_scan must be 1 to 5000';
    END IF;
    -- The window: the next p_scan events by id (a primary-key range, however large the table).
    SELECT max(w.id), min(w.created_at) INTO v_last, v_oldest
      FROM (SELECT o.id, o.created_at FROM flexcharge.outbox o
             WHERE o.id > coalesce(p_after_id, 0) ORDER BY o.id LIMIT p_scan) w;
    IF v_last IS NULL OR v_oldest >= v_youngest THEN
        next_after_id := NULL;   -- the end, or only events too young for any retention
        RETURN NEXT;
        RETURN;
    END IF;
    next_after_id := v_last;

    FOR v_order IN
        WITH candidates AS (
            SELECT DISTINCT o.merchant_id, o.order_id
              FROM flexcharge.outbox o
             WHERE o.id > coalesce(p_after_id, 0) AND o.id <= v_last
               AND o.created_at < v_youngest AND flexcharge.is_final_state(o.state)
        )
        SELECT c.merchant_id, c.order_id
          FROM candidates c
          JOIN flexcharge.outbox o ON o.merchant_id = c.merchant_id AND o.order_id = c.order_id
         GROUP BY c.merchant_id, c.order_id
        HAVING bool_and(flexcharge.is_final_state(o.state))
           AND max(greatest(o.updated_at, o.created_at)) < now() - CASE
                   WHEN bool_or((o.kind = 'evaluate' AND o.decision = 'APPROVED')
                                OR (o.kind IN ('capture', 'refund') AND o.state = 'succeeded')) THEN v_rescued
                   WHEN bool_or(o.state IN ('failed', 'dead')) THEN v_failed
                   ELSE v_completed
               END
    LOOP
        -- Lock the order's final events; skip the order when any of its rows is held (a worker or
        -- an operator is changing it) or has meanwhile left a final state.
        SELECT array_agg(l.id) INTO v_ids
          FROM (SELECT o.id FROM flexcharge.outbox o
                 WHERE o.merchant_id = v_order.merchant_id AND o.order_id = v_order.order_id
                   AND flexcharge.is_final_state(o.state)
                   FOR UPDATE SKIP LOCKED) l;
        SELECT count(*) INTO v_total FROM flexcharge.outbox o
         WHERE o.merchant_id = v_order.merchant_id AND o.order_id = v_order.order_id;
        CONTINUE WHEN v_ids IS NULL OR cardinality(v_ids) <> v_total;

        DELETE FROM flexcharge.outcome_events oe WHERE oe.event_id = ANY (v_ids);
        GET DIAGNOSTICS v_outcomes = ROW_COUNT;
        DELETE FROM flexcharge.outbox o WHERE o.id = ANY (v_ids);
        orders := orders + 1;
        events := events + cardinality(v_ids);
        outcomes := outcomes + v_outcomes;
    END LOOP;
    RETURN NEXT;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- attempts (the ledger), outcome_events that match no event, merchant_audit: one walker, with each
-- table's rule here (the table name only picks one of these three; it never reaches the SQL text
-- otherwise):
--   attempts        finished_at older than the retention (at least 1 day), and its event is gone
--   outcome_events  last_delivery_at older than the retention (at least 1 day), and event_id NULL
--   merchant_audit  at older than the retention (at least 365 days)

CREATE FUNCTION flexcharge.prune_history(
    p_table     text,       -- 'attempts', 'outcome_events' or 'merchant_audit'
    p_after_id  bigint,     -- continue after this id (0 to start a pass)
    p_scan      integer,    -- rows looked at in this call (1 to 5000)
    p_retention interval
) RETURNS TABLE (deleted integer, next_after_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_time   text;
    v_floor  interval;
    v_rule   text;
    v_cutoff timestamptz;
    v_last   bigint;
    v_oldest timestamptz;
BEGIN
    CASE p_table
        WHEN 'attempts' THEN
            v_time := 'finished_at'; v_floor := interval '1 day';
            v_rule := 'AND NOT EXISTS (SELECT 1 FROM flexcharge.outbox o WHERE o.id = t.event_id)';
        WHEN 'outcome_events' THEN
            v_time := 'last_delivery_at'; v_floor := interval '1 day'; v_rule := 'AND t.event_id IS NULL';
        WHEN 'merchant_audit' THEN
            v_time := 'at'; v_floor := interval '365 days'; v_rule := '';
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'prune_history: p_table must be attempts, outcome_events or merchant_audit';
    END CASE;
    IF p_scan IS NULL OR p_scan NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'prune_history: p_scan must be 1 to 5000';
    END IF;
    v_cutoff := now() - greatest(p_retention, v_floor);
    -- The window: the next p_scan rows by id (a primary-key range).
    EXECUTE format('SELECT max(w.id), min(w.at) FROM (SELECT t.id, t.%1$I AS at FROM flexcharge.%2$I t
                     WHERE t.id > $1 ORDER BY t.id LIMIT $2) w', v_time, p_table)
       INTO v_last, v_oldest USING coalesce(p_after_id, 0), p_scan;
    IF v_last IS NULL OR v_oldest >= v_cutoff THEN
        deleted := 0; next_after_id := NULL;   -- the end, or only rows too young
        RETURN NEXT;
        RETURN;
    END IF;
    EXECUTE format('DELETE FROM flexcharge.%2$I t WHERE t.id > $1 AND t.id <= $2 AND t.%1$I < $3 %3$s',
                   v_time, p_table, v_rule)
       USING coalesce(p_after_id, 0), v_last, v_cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    next_after_id := v_last;
    RETURN NEXT;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- webhook_nonces (by its seen_at index, oldest first)

CREATE FUNCTION flexcharge.prune_webhook_nonces(
    p_limit     integer,    -- rows deleted at most in this call (1 to 5000)
    p_retention interval    -- seen longer ago than this (at least 1 hour: well past the skew window)
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'prune_webhook_nonces: p_limit must be 1 to 5000';
    END IF;
    DELETE FROM flexcharge.webhook_nonces n
     WHERE (n.merchant_id, n.nonce) IN (
         SELECT o.merchant_id, o.nonce FROM flexcharge.webhook_nonces o
          WHERE o.seen_at < now() - greatest(p_retention, interval '1 hour')
          ORDER BY o.seen_at LIMIT p_limit);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants (0012's header): nothing for PUBLIC; the worker role prunes (see WHO PRUNES above).
-- is_final_state is a helper of the functions above (they run as the owner): no grant.
REVOKE ALL ON FUNCTION
    flexcharge.is_final_state(text),
    flexcharge.prune_outbox(bigint, integer, interval, interval, interval),
    flexcharge.prune_history(text, bigint, integer, interval),
    flexcharge.prune_webhook_nonces(integer, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    flexcharge.prune_outbox(bigint, integer, interval, interval, interval),
    flexcharge.prune_history(text, bigint, integer, interval),
    flexcharge.prune_webhook_nonces(integer, interval)
    TO flexcharge_worker;
