-- 0011_credentials.sql
--
-- Sealed credentials bound to what they protect, and webhooks bound to their environment.
--
-- Sealed credentials (flexcharge.merchant_credentials, see 0002): values written from now on are
-- in format v2: they start with "FCO" 0x02 and the id of the key that sealed them, and are sealed
-- with AES-GCM associated data 'flexcharge-outbox/v2|<merchant_id>|<environment>|<field>', so a
-- value copied to another merchant, environment or column no longer opens. key_id is the sealing
-- key's id (first 8 hex digits of its SHA-256) and is checked against the value's own. Values
-- written before this migration (v1: no associated data) still open until they are re-sealed by
-- `flexcharge-outbox merchant rotate-credentials` (see docs/credentials.md). No column changes:
-- the format is in the value.
COMMENT ON COLUMN flexcharge.merchant_credentials.key_id IS
    'Id of the key that sealed this row''s values (first 8 hex digits of its SHA-256); v2 values carry it too and must agree.';

-- Webhooks: a delivery whose signing key and IsTestMode disagree (a sandbox key with
-- IsTestMode=false, a production key with IsTestMode=true, or no IsTestMode) is refused: it is
-- recorded here with the reason, against no event, and settles nothing.
ALTER TABLE flexcharge.outcome_events ADD COLUMN refused_reason text;
COMMENT ON COLUMN flexcharge.outcome_events.refused_reason IS
    'Why a verified webhook was refused (its key and IsTestMode disagree); NULL when it was accepted.';

-- A webhook event is recorded once per environment: a delivery signed with one environment's key
-- can never pre-empt (as "already recorded") the same OrderId/Event/TimeStamp of the other.
-- Refused deliveries are not deduplicated (each is kept for ops).
DROP INDEX flexcharge.outcome_events_once;
CREATE UNIQUE INDEX outcome_events_once
    ON flexcharge.outcome_events (merchant_id, environment, fc_order_id, fc_event, fc_timestamp)
    WHERE source = 'webhook' AND refused_reason IS NULL;
