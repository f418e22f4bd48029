-- 0003_outbox.sql
--
-- flexcharge.outbox: the table the gateway inserts payment events into, inside the same
-- database transaction that records the payment, so an event exists exactly when the payment does.
--
-- THE GATEWAY'S CONTRACT (these column names do not change):
--   kind             'transmit' | 'evaluate' | 'cancel' | 'refund' | 'external_cancel'
--   merchant_id      the gateway's merchant id (see flexcharge.merchants)
--   order_id         the gateway's order id; events of one order are processed in insert order
--   channel          'cit' (customer-initiated) | 'mit' (merchant-initiated)
--   origin           for CIT: 'website' | 'call_center'; NULL for MIT
--   site_url         the site the order came from ...
--   descriptor       ... else the statement descriptor: at least one of the two is required
--   payload          the FlexCharge request body as a JSON object, WITHOUT credentials
--                    and without card numbers (tokenize first; a plaintext PAN is refused)
--   idempotency_key  optional; generated when absent (or taken from payload.idempotencyKey),
--                    then fixed for the event's whole life: every attempt sends the same key
-- and `id`, `created_at` are filled in.
--
-- STATES (column `state`), readable by the gateway:
--   pending    waiting to be claimed (new, or waiting for a retry at next_attempt_at)
--   running    claimed by a worker holding a lease until lease_expires_at
--   succeeded  FlexCharge accepted it (see transaction_key / order_session_key / decision)
--   awaiting_outcome  evaluate answered SUBMITTED / CHALLENGE / CAPTUREREQUIRED: the final
--              outcome comes later (webhook or order lookup)
--   failed     FlexCharge refused it for good (see last_error, field_errors); fix and retry
--   skipped    not sent: the merchant's channel is off (see last_error for the reason)
--   dead       attempts exhausted, or an evaluate that could not be resolved safely; an
--              operator decides (flexcharge-outbox retry / skip)
-- `next_action` tells what the worker does next with a pending event: 'send' the request, or
-- 'lookup' the order at FlexCharge first (after an ambiguous attempt, e.g. a timeout once the
-- request was sent, or once FlexCharge's 24 h idempotency window has passed).

CREATE TABLE flexcharge.outbox (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at         timestamptz NOT NULL DEFAULT now(),

    -- The gateway's columns.
    kind               text NOT NULL,
    merchant_id        text NOT NULL,
    order_id           text NOT NULL,
    channel            text NOT NULL,
    origin             text,
    site_url           text,
    descriptor         text,
    payload            jsonb NOT NULL,
    idempotency_key    text NOT NULL,

    -- Derived at insert by flexcharge.outbox_before_insert().
    site               text GENERATED ALWAYS AS (coalesce(site_url, descriptor)) STORED,
    lane               smallint NOT NULL,       -- 0 CIT evaluate, 1 MIT evaluate, 2 follow-up, 3 transmit
    claim_lane         smallint NOT NULL,       -- lane used for claiming (raised for an order's earlier events)
    amount_cents       bigint,                  -- payload.transaction.amount, or a refund's amountCents
    currency           text,

    -- Processing, written by workers only.
    state              text NOT NULL DEFAULT 'pending',
    next_action        text NOT NULL DEFAULT 'send',
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner        text,
    lease_expires_at   timestamptz,
    first_claimed_at   timestamptz,            -- start of FlexCharge's idempotency window for this key
    environment        text,                   -- 'sandbox' | 'production' once routed

    -- Outcome.
    transaction_key    text,                   -- /transmit: transmitId
    order_session_key  text,                   -- /evaluate: FlexCharge's order id
    decision           text,                   -- /evaluate status: APPROVED, DECLINED, CHALLENGE, SUBMITTED, ...
    last_http_status   integer,
    last_error_class   text,                   -- retryable | permanent | ambiguous | config | lease_expired
    last_error         text,                   -- a readable reason; never card data or secrets
    field_errors       jsonb,                  -- FlexCharge's validation errors: {"field": ["message", ...]}
    completed_at       timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT outbox_state_valid CHECK (state IN
        ('pending', 'running', 'succeeded', 'awaiting_outcome', 'failed', 'skipped', 'dead')),
    CONSTRAINT outbox_next_action_valid CHECK (next_action IN ('send', 'lookup')),
    CONSTRAINT outbox_kind_valid CHECK (kind IN ('transmit', 'evaluate', 'cancel', 'refund', 'external_cancel')),
    CONSTRAINT outbox_channel_valid CHECK (channel IN ('cit', 'mit')),
    CONSTRAINT outbox_origin_valid CHECK ((channel = 'cit' AND origin IN ('website', 'call_center'))
                                       OR (channel = 'mit' AND origin IS NULL)),
    CONSTRAINT outbox_site_present CHECK (site_url IS NOT NULL OR descriptor IS NOT NULL),
    CONSTRAINT outbox_payload_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT outbox_running_has_lease CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
)
-- Rows are updated two or three times in their life (claim, complete): leave room on each page,
-- and vacuum the table early, so the hot part of the table stays small as history grows.
WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
      autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE flexcharge.outbox IS
    'Payment events written by the gateway in its own transactions; delivered to FlexCharge by flexcharge-outbox workers. See migrations/0003_outbox.sql for the contract.';

-- The claim index: only pending rows are in it, so it stays small however long the history is.
-- Its order serves the claim query: per lane, merchants one by one (fairness), oldest first.
CREATE INDEX outbox_claim ON flexcharge.outbox (claim_lane, merchant_id, next_attempt_at, id)
    WHERE state = 'pending';

-- Expired leases are found here (a crashed worker's rows come back); small for the same reason.
CREATE INDEX outbox_leases ON flexcharge.outbox (lease_expires_at) WHERE state = 'running';

-- All events of one order: the per-order ordering check, the gateway's lookups by its order id.
CREATE INDEX outbox_by_order ON flexcharge.outbox (merchant_id, order_id, id);

-- Reporting by day scans ranges of created_at; a BRIN index costs almost nothing to maintain
-- because ids and created_at grow together.
CREATE INDEX outbox_created_brin ON flexcharge.outbox USING brin (created_at);

-- Checks an event at insert with messages that name the field, fills in the derived columns,
-- and raises the claim priority of the order's earlier pending events (a CIT evaluate must not
-- wait behind a transmit backlog just because its own order's transmit sits in it).
CREATE FUNCTION flexcharge.outbox_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_pan_field text;
    v_amount jsonb;
BEGIN
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('transmit', 'evaluate', 'cancel', 'refund', 'external_cancel') THEN
        PERFORM flexcharge.reject('kind', format('must be one of transmit, evaluate, cancel, refund, external_cancel (got %s)', coalesce(quote_literal(NEW.kind), 'NULL')));
    END IF;
    IF NEW.merchant_id IS NULL OR btrim(NEW.merchant_id) = '' OR length(NEW.merchant_id) > 128 THEN
        PERFORM flexcharge.reject('merchant_id', 'is required (1 to 128 characters)');
    END IF;
    IF NEW.order_id IS NULL OR btrim(NEW.order_id) = '' OR length(NEW.order_id) > 128 THEN
        PERFORM flexcharge.reject('order_id', 'is required (1 to 128 characters)');
    END IF;
    IF NEW.channel IS NULL OR NEW.channel NOT IN ('cit', 'mit') THEN
        PERFORM flexcharge.reject('channel', format('must be cit or mit (got %s)', coalesce(quote_literal(NEW.channel), 'NULL')));
    END IF;
    IF NEW.channel = 'cit' AND (NEW.origin IS NULL OR NEW.origin NOT IN ('website', 'call_center')) THEN
        PERFORM flexcharge.reject('origin', format('must be website or call_center for a cit event (got %s)', coalesce(quote_literal(NEW.origin), 'NULL')));
    END IF;
    IF NEW.channel = 'mit' AND NEW.origin IS NOT NULL THEN
        PERFORM flexcharge.reject('origin', 'must be NULL for an mit event (origin tells website from call center orders, which are cit)');
    END IF;
    IF coalesce(btrim(NEW.site_url), '') = '' AND coalesce(btrim(NEW.descriptor), '') = '' THEN
        PERFORM flexcharge.reject('site_url', 'site_url or descriptor is required: it tells which site the order belongs to');
    END IF;
    IF NEW.payload IS NULL OR jsonb_typeof(NEW.payload) <> 'object' THEN
        PERFORM flexcharge.reject('payload', 'must be a JSON object (the FlexCharge request body)');
    END IF;
    IF octet_length(NEW.payload::text) > 65536 THEN
        PERFORM flexcharge.reject('payload', 'is larger than 64 KiB');
    END IF;
    IF NEW.payload ?| ARRAY['AppKey', 'AppSecret', 'appKey', 'appSecret', 'accessToken'] THEN
        PERFORM flexcharge.reject('payload', 'must not carry FlexCharge credentials (they come from flexcharge.merchant_credentials)');
    END IF;

    -- Amounts are integer cents, as FlexCharge expects them.
    IF NEW.kind IN ('transmit', 'evaluate') THEN
        v_amount := NEW.payload #> '{transaction,amount}';
        IF v_amount IS NULL OR jsonb_typeof(v_amount) <> 'number' OR (v_amount #>> '{}') !~ '^[0-9]{1,15}$' THEN
            PERFORM flexcharge.reject('payload.transaction.amount', 'is required: a whole number of cents (e.g. 1999 for 19.99)');
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        NEW.currency := NEW.payload #>> '{transaction,currency}';
        IF NEW.payload ? 'isMIT' AND (NEW.payload ->> 'isMIT') IS DISTINCT FROM (NEW.channel = 'mit')::text THEN
            PERFORM flexcharge.reject('payload.isMIT', format('contradicts channel %s', NEW.channel));
        END IF;
    ELSIF NEW.kind = 'refund' THEN
        v_amount := NEW.payload -> 'amountCents';
        IF v_amount IS NULL OR jsonb_typeof(v_amount) <> 'number' OR (v_amount #>> '{}') !~ '^[0-9]{1,15}$'
           OR (v_amount #>> '{}')::bigint = 0 THEN
            PERFORM flexcharge.reject('payload.amountCents', 'is required: the amount to refund in whole cents, above 0');
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
    END IF;

    v_pan_field := flexcharge.find_plaintext_pan(NEW.payload);
    IF v_pan_field IS NOT NULL THEN
        PERFORM flexcharge.reject(v_pan_field,
            'holds a plaintext card number; tokenize the card first (POST /v1/tokenize) and send the token with "token": true');
    END IF;

    -- The idempotency key: given, else the payload's, else a new UUID; fixed from now on.
    IF NEW.idempotency_key IS NOT NULL AND NEW.payload ? 'idempotencyKey'
       AND NEW.payload ->> 'idempotencyKey' <> NEW.idempotency_key THEN
        PERFORM flexcharge.reject('idempotency_key', 'differs from payload.idempotencyKey; give one or make them equal');
    END IF;
    NEW.idempotency_key := coalesce(NEW.idempotency_key, NEW.payload ->> 'idempotencyKey', gen_random_uuid()::text);
    IF length(NEW.idempotency_key) NOT BETWEEN 1 AND 64 THEN
        PERFORM flexcharge.reject('idempotency_key', 'must be 1 to 64 characters (a UUID is best)');
    END IF;

    NEW.lane := CASE
        WHEN NEW.kind = 'evaluate' AND NEW.channel = 'cit' THEN 0
        WHEN NEW.kind = 'evaluate' THEN 1
        WHEN NEW.kind = 'transmit' THEN 3
        ELSE 2
    END;
    NEW.claim_lane := NEW.lane;
    -- Processing columns belong to the workers, whatever the insert said.
    NEW.state := 'pending';
    NEW.next_action := 'send';
    NEW.attempts := 0;
    NEW.next_attempt_at := now();
    NEW.lease_owner := NULL;
    NEW.lease_expires_at := NULL;

    -- Priority inheritance: this order's earlier pending events run first (per-order order),
    -- so they must be claimed at this event's priority.
    IF NEW.lane < 3 THEN
        UPDATE flexcharge.outbox
           SET claim_lane = NEW.lane
         WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id
           AND state = 'pending' AND claim_lane > NEW.lane;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER outbox_before_insert BEFORE INSERT ON flexcharge.outbox
    FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_before_insert();

-- What the gateway wrote is fixed for the event's life: the request that is retried must be the
-- request that was first sent, under the same idempotency key.
CREATE FUNCTION flexcharge.outbox_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.merchant_id IS DISTINCT FROM OLD.merchant_id
       OR NEW.order_id IS DISTINCT FROM OLD.order_id OR NEW.channel IS DISTINCT FROM OLD.channel
       OR NEW.origin IS DISTINCT FROM OLD.origin OR NEW.payload IS DISTINCT FROM OLD.payload
       OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
       OR NEW.site_url IS DISTINCT FROM OLD.site_url OR NEW.descriptor IS DISTINCT FROM OLD.descriptor THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation',
            MESSAGE = 'flexcharge.outbox: an event''s gateway columns cannot change after insert; insert a new event instead';
    END IF;
    RETURN NEW;
END;
$$;

-- Fires only when a statement names one of these columns: the workers' updates never pay for it.
CREATE TRIGGER outbox_immutable
    BEFORE UPDATE OF kind, merchant_id, order_id, channel, origin, payload, idempotency_key, site_url, descriptor
    ON flexcharge.outbox FOR EACH ROW EXECUTE FUNCTION flexcharge.outbox_immutable();

-- Wakes the workers as soon as the gateway's transaction commits (NOTIFY is delivered at
-- commit). One notification per statement, carrying the most urgent lane inserted.
CREATE FUNCTION flexcharge.outbox_notify_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flexcharge_outbox', (SELECT min(lane)::text FROM inserted));
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify_insert AFTER INSERT ON flexcharge.outbox
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION flexcharge.outbox_notify_insert();

-- Tells the gateway an event reached an outcome, on channel 'flexcharge_event_done', with a
-- JSON payload {"id", "merchant_id", "order_id", "kind", "state", "decision"}. A checkout
-- waiting for a CIT evaluate LISTENs on it. Transmits are fire-and-forget and do not notify.
CREATE FUNCTION flexcharge.outbox_notify_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flexcharge_event_done', json_build_object(
        'id', NEW.id, 'merchant_id', NEW.merchant_id, 'order_id', NEW.order_id,
        'kind', NEW.kind, 'state', NEW.state, 'decision', NEW.decision)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify_done AFTER UPDATE OF state, decision ON flexcharge.outbox
    FOR EACH ROW
    WHEN (NEW.kind <> 'transmit'
          AND NEW.state IN ('succeeded', 'awaiting_outcome', 'failed', 'skipped', 'dead')
          AND (OLD.state IS DISTINCT FROM NEW.state OR OLD.decision IS DISTINCT FROM NEW.decision))
    EXECUTE FUNCTION flexcharge.outbox_notify_done();
