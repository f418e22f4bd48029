-- 0007_outcomes.sql
--
-- Final outcomes that arrive after the first answer: an evaluate answered SUBMITTED (managed MIT),
-- CHALLENGE or CAPTUREREQUIRED waits in state 'awaiting_outcome' until
--   * FlexCharge's webhook says what happened (POST /webhooks/flexcharge?merchant=<merchant_id>,
--     served by `flexcharge-outbox serve`), or
--   * a worker's order lookup (GET /orders/{id}) finds it final. Workers poll awaiting events on a
--     backoff schedule (next_attempt_at, outcome_polls) until the order is final or past its
--     expiryDateUtc, so a lost webhook never leaves an order pending forever.
-- Either way the event gets its final `decision` (APPROVED, DECLINED, EXPIRED, CANCELLED) and state
-- 'succeeded'; the existing trigger NOTIFYs 'flexcharge_event_done' and flexcharge.daily_report
-- counts it. An order still not final well past its expiry goes 'dead' (see last_error).

-- How many lookups were made for an awaiting event (the poll backoff grows with it). While an
-- event is 'awaiting_outcome', next_attempt_at is the time of its next lookup.
ALTER TABLE flexcharge.outbox ADD COLUMN outcome_polls integer NOT NULL DEFAULT 0;

-- Finds the lookups that are due; only awaiting events are in it.
CREATE INDEX outbox_awaiting_outcome ON flexcharge.outbox (next_attempt_at) WHERE state = 'awaiting_outcome';

-- Finds the evaluate a webhook is about (OrderId = orderSessionKey).
CREATE INDEX outbox_by_order_session_key ON flexcharge.outbox (order_session_key) WHERE order_session_key IS NOT NULL;

-- Everything FlexCharge told us after the first answer, one row per webhook event (redeliveries
-- are counted in `deliveries`, never recorded twice) and one per lookup that found a final state.
-- Webhook payloads carry ids only (no card data, no secrets).
CREATE TABLE flexcharge.outcome_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    source             text NOT NULL,          -- webhook | lookup
    merchant_id        text NOT NULL,
    environment        text,                   -- sandbox | production (the key that verified it)
    event_id           bigint,                 -- the outbox evaluate it is about; NULL when none matches
    fc_event           text NOT NULL,          -- order.completed, order.expired, ..., or 'lookup'
    fc_order_id        text,                   -- FlexCharge's OrderId (= order_session_key)
    external_order_id  text,                   -- the gateway's order id as FlexCharge echoes it
    confirmation_id    text,
    fc_timestamp       text,                   -- TimeStamp as sent by FlexCharge
    is_test_mode       boolean,
    deliveries         integer NOT NULL DEFAULT 1,
    last_delivery_at   timestamptz NOT NULL DEFAULT now(),
    decision           text,                   -- the decision this outcome gave the event, if it changed it
    payload            jsonb,
    CONSTRAINT outcome_events_source_valid CHECK (source IN ('webhook', 'lookup'))
);
COMMENT ON TABLE flexcharge.outcome_events IS
    'Webhooks (recorded once per event, redeliveries counted) and final lookups for outbox events awaiting an outcome.';

-- A webhook event is recorded once, however often FlexCharge redelivers it (IsResent).
CREATE UNIQUE INDEX outcome_events_once ON flexcharge.outcome_events (merchant_id, fc_order_id, fc_event, fc_timestamp)
    WHERE source = 'webhook';
CREATE INDEX outcome_events_by_event ON flexcharge.outcome_events (event_id);

-- Nonces of verified webhook deliveries: the same nonce is refused a second time (replay). Rows
-- older than the clock-skew window are useless (a stale date is refused anyway) and are pruned.
CREATE TABLE flexcharge.webhook_nonces (
    merchant_id  text NOT NULL,
    nonce        text NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX webhook_nonces_seen ON flexcharge.webhook_nonces (seen_at);

-- The outcomes of each order, for the gateway's ops:
--   SELECT * FROM flexcharge.order_outcomes WHERE merchant_id = 'm-1' AND order_id = 'A-1001';
CREATE VIEW flexcharge.order_outcomes AS
SELECT oe.id, oe.received_at, oe.source, oe.merchant_id, o.order_id, oe.event_id, o.kind, o.state AS event_state,
       o.decision AS event_decision, oe.fc_event, oe.decision, oe.fc_order_id, oe.external_order_id,
       oe.confirmation_id, oe.fc_timestamp, oe.deliveries, oe.environment
  FROM flexcharge.outcome_events oe
  LEFT JOIN flexcharge.outbox o ON o.id = oe.event_id;
COMMENT ON VIEW flexcharge.order_outcomes IS 'Webhooks and lookups recorded per order, with the event they concern.';
