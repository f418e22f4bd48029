-- 0020_rate_limit.sql
--
-- A rate limit toward FlexCharge per merchant and environment (a merchant has one MID per
-- environment: merchant_credentials), shared by every worker through one token bucket row.
--
-- SETTING: merchants.rate_limit_per_second (NULL: no limit, the default), set by the operator with
-- `flexcharge-outbox merchant set M --rate-limit 20/s` (or `--rate-limit none`), audited in
-- merchant_audit like every merchant setting. It applies to both environments of the merchant,
-- each with its own bucket.
--
-- THE BUCKET (flexcharge.rate_buckets, one row per merchant and environment, created on first use):
-- refilled at rate_limit_per_second tokens a second, holding at most the burst,
-- flexcharge.rate_limit_burst(rate) = ceil(rate / 4) (a quarter second's worth, at least 1).
-- A call to FlexCharge (send, lookup) spends one token.
--
-- COST: a worker does not ask per call. flexcharge.take_rate_tokens() grants a small lease of up
-- to ceil(rate / 10) tokens in one statement (row locked, refilled, taken); the worker spends them
-- locally within 250 ms and forgets what is left (Sources/OutboxEngine/RateLimit/RateLimiter.swift).
-- So a limited merchant costs at most about ten statements a second per worker busy with it (an
-- empty bucket is asked again only when a whole lease may have refilled), an unlimited one one
-- statement per worker every few seconds (the worker remembers "no limit").
--
-- WHAT IS GUARANTEED, all workers together: over any long period, at most rate_limit_per_second
-- calls a second; over any 1 s window, at most 1.5 x the rate (the burst, plus tokens leased
-- in the 250 ms before the window and spent inside it).
--
-- AN EVENT WITHOUT A TOKEN is given back by the worker before any call, exactly as a circuit
-- breaker's hold (0013): pending again, its claim not counted as an attempt, no attempt-ledger
-- row, last_error_class 'rate_limit', due when a token is expected. Not a failure, no attempt spent.
--
-- Never edit this file once applied; add a new numbered file.

ALTER TABLE flexcharge.merchants
    ADD COLUMN rate_limit_per_second integer
        CONSTRAINT merchants_rate_limit_positive CHECK (rate_limit_per_second BETWEEN 1 AND 100000);
COMMENT ON COLUMN flexcharge.merchants.rate_limit_per_second IS
    'Calls a second toward FlexCharge per environment, shared by all workers; NULL: no limit (0020).';

CREATE TABLE flexcharge.rate_buckets (
    merchant_id   text NOT NULL,
    environment   text NOT NULL,
    -- Tokens left at refreshed_at (fractional: the refill is continuous).
    tokens        double precision NOT NULL,
    refreshed_at  timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, environment)
);
COMMENT ON TABLE flexcharge.rate_buckets IS
    'Token buckets of the per-merchant rate limit toward FlexCharge, one per merchant and environment (0020).';

-- The burst: how many tokens a bucket holds at most. One home for the rule.
CREATE FUNCTION flexcharge.rate_limit_burst(p_per_second integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT
    RETURN greatest(1, ceil(p_per_second / 4.0))::integer;

-- Grants up to p_want tokens of the merchant's bucket for the environment, in one round trip.
-- Returns granted (p_want when the merchant has no limit), per_second (NULL: no limit) and
-- wait_seconds (when none was granted: how long until the next token).
CREATE FUNCTION flexcharge.take_rate_tokens(p_merchant_id text, p_environment text, p_want integer)
    RETURNS TABLE (granted integer, per_second integer, wait_seconds double precision)
    LANGUAGE plpgsql
AS $$
DECLARE
    v_rate     integer;
    v_burst    integer;
    v_tokens   double precision;
    v_at       timestamptz;
    v_now      timestamptz;
BEGIN
    SELECT m.rate_limit_per_second INTO v_rate FROM flexcharge.merchants m WHERE m.merchant_id = p_merchant_id;
    IF v_rate IS NULL THEN
        RETURN QUERY SELECT p_want, NULL::integer, 0::double precision;
        RETURN;
    END IF;
    v_burst := flexcharge.rate_limit_burst(v_rate);
    INSERT INTO flexcharge.rate_buckets (merchant_id, environment, tokens, refreshed_at)
    VALUES (p_merchant_id, p_environment, v_burst, clock_timestamp())
    ON CONFLICT (merchant_id, environment) DO NOTHING;
    -- The row lock serializes the workers; the time is read once the lock is held.
    SELECT b.tokens, b.refreshed_at INTO v_tokens, v_at
      FROM flexcharge.rate_buckets b
     WHERE b.merchant_id = p_merchant_id AND b.environment = p_environment
       FOR UPDATE;
    v_now := clock_timestamp();
    v_tokens := least(v_burst::double precision,
                      v_tokens + v_rate * greatest(0, extract(epoch FROM v_now - v_at)::double precision));
    granted := least(greatest(p_want, 0), floor(v_tokens)::integer);
    UPDATE flexcharge.rate_buckets
       SET tokens = v_tokens - granted, refreshed_at = v_now
     WHERE merchant_id = p_merchant_id AND environment = p_environment;
    per_second := v_rate;
    wait_seconds := CASE WHEN granted > 0 THEN 0 ELSE (1 - (v_tokens - granted)) / v_rate END;
    RETURN NEXT;
END;
$$;

-- Grants (0012's header): the worker takes tokens; the operator may look at the buckets.
REVOKE ALL ON FUNCTION flexcharge.rate_limit_burst(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION flexcharge.take_rate_tokens(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.rate_limit_burst(integer) TO flexcharge_worker, flexcharge_operator;
GRANT EXECUTE ON FUNCTION flexcharge.take_rate_tokens(text, text, integer) TO flexcharge_worker;
GRANT SELECT, INSERT, UPDATE ON flexcharge.rate_buckets TO flexcharge_worker;
GRANT SELECT ON flexcharge.rate_buckets TO flexcharge_operator;
