-- 0006_views.sql
--
-- Views for the gateway's ops: they read events (never attempts), so a retried event counts once,
-- and they say exactly what FlexCharge was told and answered.

-- Everything about the events of one order, for the gateway's lookups by its own order id:
--   SELECT * FROM flexcharge.order_events WHERE merchant_id = 'm-1' AND order_id = 'A-1001';
CREATE VIEW flexcharge.order_events AS
SELECT id, merchant_id, order_id, kind, channel, origin, site, descriptor, state, decision,
       environment, order_session_key, transaction_key, amount_cents, currency, attempts,
       next_action, next_attempt_at, last_http_status, last_error_class, last_error, field_errors,
       idempotency_key, created_at, completed_at, updated_at
  FROM flexcharge.outbox;
COMMENT ON VIEW flexcharge.order_events IS 'Events with their state and outcome; filter by merchant_id and order_id.';

-- One row per merchant, site, descriptor, channel, origin, environment and day (UTC):
--   events        events written by the gateway
--   transmitted   transmits FlexCharge accepted
--   evaluated     evaluates FlexCharge answered
--   approved / approved_cents   rescued payments and the money rescued
--   declined, challenge (answered CHALLENGE)
--   pending       evaluates still awaiting their final outcome (SUBMITTED, CHALLENGE, CAPTUREREQUIRED)
--   failed, skipped, dead       events that ended without a FlexCharge answer to act on
CREATE VIEW flexcharge.daily_report AS
SELECT (created_at AT TIME ZONE 'UTC')::date                                     AS day,
       merchant_id,
       site,
       descriptor,
       channel,
       origin,
       environment,
       count(*)                                                                  AS events,
       count(*) FILTER (WHERE kind = 'transmit' AND state = 'succeeded')         AS transmitted,
       count(*) FILTER (WHERE kind = 'evaluate' AND state IN ('succeeded', 'awaiting_outcome'))
                                                                                 AS evaluated,
       count(*) FILTER (WHERE kind = 'evaluate' AND decision = 'APPROVED')       AS approved,
       coalesce(sum(amount_cents) FILTER (WHERE kind = 'evaluate' AND decision = 'APPROVED'), 0)::bigint
                                                                                 AS approved_cents,
       count(*) FILTER (WHERE kind = 'evaluate' AND decision = 'DECLINED')       AS declined,
       count(*) FILTER (WHERE kind = 'evaluate' AND decision = 'CHALLENGE')      AS challenge,
       count(*) FILTER (WHERE kind = 'evaluate' AND state = 'awaiting_outcome')  AS pending,
       count(*) FILTER (WHERE state = 'failed')                                  AS failed,
       count(*) FILTER (WHERE state = 'skipped')                                 AS skipped,
       count(*) FILTER (WHERE state = 'dead')                                    AS dead
  FROM flexcharge.outbox
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
COMMENT ON VIEW flexcharge.daily_report IS
    'Per merchant, site, descriptor, channel, origin, environment and UTC day: events and FlexCharge outcomes (counted per event, never per attempt).';

-- Queue health per lane and state: how many, the oldest, how many are retrying.
CREATE VIEW flexcharge.queue_health AS
SELECT lane,
       CASE lane WHEN 0 THEN 'cit_evaluate' WHEN 1 THEN 'mit_evaluate' WHEN 2 THEN 'follow_up' ELSE 'transmit' END
                                                                     AS lane_name,
       state,
       count(*)                                                      AS events,
       min(created_at)                                               AS oldest_created_at,
       extract(epoch FROM now() - min(created_at))::double precision AS oldest_age_seconds,
       count(*) FILTER (WHERE state = 'pending' AND attempts > 0)    AS retrying,
       count(*) FILTER (WHERE next_action = 'lookup')                AS awaiting_lookup
  FROM flexcharge.outbox
 WHERE state IN ('pending', 'running', 'awaiting_outcome', 'dead')
 GROUP BY lane, state;
COMMENT ON VIEW flexcharge.queue_health IS
    'Unfinished and dead events per lane and state, with the oldest age and the retry backlog.';

-- Leases held per worker right now (a worker with expired leases has probably died).
CREATE VIEW flexcharge.worker_leases AS
SELECT lease_owner                                  AS worker,
       count(*)                                     AS leases,
       count(*) FILTER (WHERE lease_expires_at < now()) AS expired,
       min(lease_expires_at)                        AS next_expiry
  FROM flexcharge.outbox
 WHERE state = 'running'
 GROUP BY lease_owner;
COMMENT ON VIEW flexcharge.worker_leases IS 'Leases held per worker; expired ones come back to pending on the next rescue.';
