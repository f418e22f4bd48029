-- 0016_money_reports.sql
--
-- Reports that follow the money. FlexCharge charges a rescued order once; afterwards money can
-- only go back: a refund (a `refund` event of ours, or one FlexCharge tells of with `order.refunded`),
-- a cancellation of the approved order (`order.cancelled`) or a chargeback from the issuer
-- (`payment.chargeback.received`). These views count each of them once, next to the money rescued,
-- and every row of flexcharge.money_adjustments names the outbox event or the webhook it comes from.
--
--   rescued_orders     one row per FlexCharge order whose money counts: an evaluate answered (or
--                      found, or settled by webhook or lookup) APPROVED, or one whose CAPTUREREQUIRED
--                      order a `capture` event captured (its captured cents count, the evaluate's
--                      amount otherwise). Evaluates sharing one FlexCharge order (a MIT order
--                      evaluated twice) count once; an approved evaluate whose answer lacked the
--                      order's id counts on its own.
--   money_adjustments  one row per refund, cancellation or chargeback of a rescued order:
--                        refund        source 'event': a succeeded `refund` event, its cents
--                                      (source_event_id = flexcharge.outbox.id);
--                                      source 'webhook': an `order.refunded` beyond the refund
--                                      events of that order (refunded in FlexCharge's portal):
--                                      FlexCharge does not say how much, so amount_cents is NULL
--                                      and the report counts it in unpriced_adjustments
--                                      (source_outcome_id = flexcharge.outcome_events.id);
--                        cancellation  `order.cancelled` of an approved order: what was not
--                                      refunded is reversed (source 'webhook');
--                        chargeback    `payment.chargeback.received`: likewise. A second
--                                      cancellation or chargeback of one order reverses nothing
--                                      more (amount 0, with a note).
--                      Redelivered webhooks are one outcome_events row (0007), so they count once;
--                      refused deliveries (environment mismatch) count never.
--   order_money        rescued_orders with their adjustments summed: gross, refunded, cancelled,
--                      charged back, net cents.
--   daily_report       replaced: also split by is_test (0014), approved and approved_cents follow
--                      rescued_orders (captures included), cancelled and expired evaluates are
--                      counted, and the money columns refunded_cents, cancelled_cents,
--                      chargeback_cents, net_cents and unpriced_adjustments follow. Money is
--                      reported on the row of the order's evaluate (its day, site, channel, ...):
--                      the net of what was rescued that day, as known now; money_adjustments.adjusted_at
--                      says when each adjustment happened.
--
-- The decisions themselves (APPROVED, DECLINED, ...) are set by the worker, the outcome poller and
-- the webhook receiver through one mapping: Sources/OutboxEngine/Outcomes/Decision.swift
-- (docs/outcomes.md). Refunds, cancellations and chargebacks after approval change no decision.

CREATE VIEW flexcharge.rescued_orders AS
WITH captured AS (
    SELECT merchant_id, environment, order_session_key,
           sum(amount_cents)::bigint AS captured_cents, min(id) AS capture_event_id
      FROM flexcharge.outbox
     WHERE kind = 'capture' AND state = 'succeeded' AND order_session_key IS NOT NULL AND environment IS NOT NULL
     GROUP BY merchant_id, environment, order_session_key
), evaluates AS (
    SELECT DISTINCT ON (e.merchant_id, e.environment, coalesce(e.order_session_key, 'event ' || e.id))
           e.id, e.merchant_id, e.order_id, e.order_session_key, e.environment, e.is_test, e.site, e.descriptor,
           e.channel, e.origin, e.created_at, e.currency, e.amount_cents, e.decision, c.captured_cents, c.capture_event_id
      FROM flexcharge.outbox e
      LEFT JOIN captured c
             ON c.merchant_id = e.merchant_id AND c.environment = e.environment AND c.order_session_key = e.order_session_key
     WHERE e.kind = 'evaluate' AND e.environment IS NOT NULL
     ORDER BY e.merchant_id, e.environment, coalesce(e.order_session_key, 'event ' || e.id),
              coalesce(e.decision = 'APPROVED', false) DESC, e.id
)
SELECT id                                                AS evaluate_id,
       merchant_id, order_id, order_session_key, environment, is_test, site, descriptor, channel, origin,
       created_at, currency,
       coalesce(captured_cents, amount_cents, 0)::bigint AS gross_cents,
       CASE WHEN captured_cents IS NULL THEN 'evaluate' ELSE 'capture' END AS rescued_by,
       capture_event_id
  FROM evaluates
 WHERE decision = 'APPROVED' OR captured_cents IS NOT NULL;
COMMENT ON VIEW flexcharge.rescued_orders IS
    'One row per FlexCharge order whose money counts (approved, or captured), with its gross cents.';

CREATE VIEW flexcharge.money_adjustments AS
WITH ro AS (  -- referenced three times below, computed once
    SELECT evaluate_id, merchant_id, order_id, order_session_key, environment, is_test, gross_cents
      FROM flexcharge.rescued_orders
), refund_events AS (
    SELECT id, merchant_id, environment, order_session_key, amount_cents, completed_at
      FROM flexcharge.outbox
     WHERE kind = 'refund' AND state = 'succeeded' AND order_session_key IS NOT NULL
), refund_totals AS (
    SELECT merchant_id, environment, order_session_key,
           count(*) AS refunds, coalesce(sum(amount_cents), 0)::bigint AS refunded_cents
      FROM refund_events
     GROUP BY merchant_id, environment, order_session_key
), webhooks AS (
    SELECT id, merchant_id, environment, fc_order_id AS order_session_key, fc_event, received_at,
           -- refunds are matched with refund events by count; cancellations and chargebacks reverse once
           row_number() OVER (PARTITION BY merchant_id, environment, fc_order_id, fc_event = 'order.refunded'
                              ORDER BY received_at, id) AS nth
      FROM flexcharge.outcome_events
     WHERE source = 'webhook' AND refused_reason IS NULL
       AND fc_event IN ('order.refunded', 'order.cancelled', 'payment.chargeback.received')
)
SELECT ro.evaluate_id, ro.merchant_id, ro.order_id, ro.order_session_key, ro.environment, ro.is_test,
       'refund'::text           AS kind,
       r.amount_cents::bigint   AS amount_cents,
       'event'::text            AS source,
       r.id                     AS source_event_id,
       NULL::bigint             AS source_outcome_id,
       r.completed_at           AS adjusted_at,
       NULL::text               AS note
  FROM ro
  JOIN refund_events r USING (merchant_id, environment, order_session_key)
UNION ALL
SELECT ro.evaluate_id, ro.merchant_id, ro.order_id, ro.order_session_key, ro.environment, ro.is_test,
       'refund', NULL, 'webhook', NULL, w.id, w.received_at,
       'order.refunded without a refund event of ours (refunded in FlexCharge''s portal?): the amount is not known; see the order at FlexCharge'
  FROM ro
  JOIN webhooks w USING (merchant_id, environment, order_session_key)
  LEFT JOIN refund_totals t USING (merchant_id, environment, order_session_key)
 WHERE w.fc_event = 'order.refunded' AND w.nth > coalesce(t.refunds, 0)
UNION ALL
SELECT ro.evaluate_id, ro.merchant_id, ro.order_id, ro.order_session_key, ro.environment, ro.is_test,
       CASE w.fc_event WHEN 'order.cancelled' THEN 'cancellation' ELSE 'chargeback' END,
       CASE WHEN w.nth = 1 THEN greatest(ro.gross_cents - coalesce(t.refunded_cents, 0), 0) ELSE 0 END::bigint,
       'webhook', NULL, w.id, w.received_at,
       CASE WHEN w.nth > 1 THEN 'already reversed by an earlier cancellation or chargeback of this order' END
  FROM ro
  JOIN webhooks w USING (merchant_id, environment, order_session_key)
  LEFT JOIN refund_totals t USING (merchant_id, environment, order_session_key)
 WHERE w.fc_event <> 'order.refunded';
COMMENT ON VIEW flexcharge.money_adjustments IS
    'Refunds, cancellations and chargebacks of rescued orders; source_event_id (outbox) or source_outcome_id (outcome_events) names where each comes from.';

CREATE VIEW flexcharge.order_money AS
SELECT ro.evaluate_id, ro.merchant_id, ro.order_id, ro.order_session_key, ro.environment, ro.is_test, ro.currency,
       ro.gross_cents,
       coalesce(a.refunded_cents, 0)::bigint                                  AS refunded_cents,
       coalesce(a.cancelled_cents, 0)::bigint                                 AS cancelled_cents,
       coalesce(a.chargeback_cents, 0)::bigint                                AS chargeback_cents,
       (ro.gross_cents - coalesce(a.refunded_cents, 0) - coalesce(a.cancelled_cents, 0)
                       - coalesce(a.chargeback_cents, 0))::bigint             AS net_cents,
       coalesce(a.unpriced, 0)::bigint                                        AS unpriced_adjustments
  FROM flexcharge.rescued_orders ro
  LEFT JOIN (
      SELECT merchant_id, environment, order_session_key,
             sum(amount_cents) FILTER (WHERE kind = 'refund')       AS refunded_cents,
             sum(amount_cents) FILTER (WHERE kind = 'cancellation') AS cancelled_cents,
             sum(amount_cents) FILTER (WHERE kind = 'chargeback')   AS chargeback_cents,
             count(*) FILTER (WHERE amount_cents IS NULL)           AS unpriced
        FROM flexcharge.money_adjustments
       GROUP BY merchant_id, environment, order_session_key
  ) a USING (merchant_id, environment, order_session_key);
COMMENT ON VIEW flexcharge.order_money IS
    'Per rescued order: gross cents, what went back (refunds, cancellation, chargeback) and the net.';

-- daily_report gains a grouping column (is_test) in the middle, so it is dropped and created again
-- (CREATE OR REPLACE VIEW can only append columns); its grant is given again below.
DROP VIEW flexcharge.daily_report;

-- One row per merchant, site, descriptor, channel, origin, environment, is_test and day (UTC):
--   events        events written by the gateway
--   transmitted   transmits FlexCharge accepted
--   evaluated     evaluates FlexCharge answered
--   approved / approved_cents   rescued orders (approved, or captured) and their gross cents
--   declined, challenge (answered CHALLENGE), cancelled, expired
--   pending       evaluates still awaiting their final outcome (SUBMITTED, CHALLENGE, CAPTUREREQUIRED)
--   failed, skipped, dead       events that ended without a FlexCharge answer to act on
--   refunded_cents, cancelled_cents, chargeback_cents   money that went back (money_adjustments)
--   net_cents     approved_cents minus the three above
--   unpriced_adjustments        refunds FlexCharge told of without an amount (see money_adjustments)
CREATE VIEW flexcharge.daily_report AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date                                       AS day,
       o.merchant_id,
       o.site,
       o.descriptor,
       o.channel,
       o.origin,
       o.environment,
       o.is_test,
       count(*)                                                                      AS events,
       count(*) FILTER (WHERE o.kind = 'transmit' AND o.state = 'succeeded')         AS transmitted,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.state IN ('succeeded', 'awaiting_outcome'))
                                                                                     AS evaluated,
       count(m.evaluate_id)                                                          AS approved,
       coalesce(sum(m.gross_cents), 0)::bigint                                       AS approved_cents,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.decision = 'DECLINED')       AS declined,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.decision = 'CHALLENGE')      AS challenge,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.state = 'awaiting_outcome')  AS pending,
       count(*) FILTER (WHERE o.state = 'failed')                                    AS failed,
       count(*) FILTER (WHERE o.state = 'skipped')                                   AS skipped,
       count(*) FILTER (WHERE o.state = 'dead')                                      AS dead,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.decision = 'CANCELLED')      AS cancelled,
       count(*) FILTER (WHERE o.kind = 'evaluate' AND o.decision = 'EXPIRED')        AS expired,
       coalesce(sum(m.refunded_cents), 0)::bigint                                    AS refunded_cents,
       coalesce(sum(m.cancelled_cents), 0)::bigint                                   AS cancelled_cents,
       coalesce(sum(m.chargeback_cents), 0)::bigint                                  AS chargeback_cents,
       coalesce(sum(m.net_cents), 0)::bigint                                         AS net_cents,
       coalesce(sum(m.unpriced_adjustments), 0)::bigint                              AS unpriced_adjustments
  FROM flexcharge.outbox o
  LEFT JOIN flexcharge.order_money m ON m.evaluate_id = o.id
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
COMMENT ON VIEW flexcharge.daily_report IS
    'Per merchant, site, descriptor, channel, origin, environment, is_test and UTC day: events, FlexCharge outcomes (counted per event, never per attempt) and the money rescued, gross and net.';

-- Grants (0012's header): the operator reads every view; `reconcile` (a worker login) reads
-- money_adjustments to tell an approved order FlexCharge cancelled from a wrong decision.
GRANT SELECT ON flexcharge.rescued_orders, flexcharge.money_adjustments, flexcharge.order_money,
                flexcharge.daily_report TO flexcharge_operator;
GRANT SELECT ON flexcharge.money_adjustments TO flexcharge_worker;
