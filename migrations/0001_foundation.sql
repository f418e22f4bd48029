-- 0001_foundation.sql
--
-- Everything of FlexCharge Outbox lives in the schema `flexcharge`. This file holds the shared
-- helpers that later files use: the error helper that names the offending field, and the
-- card-number (PAN) detector used by the outbox's insert guard.
--
-- Never edit this file once it is applied anywhere: add a new numbered file instead
-- (`flexcharge-outbox migrate` refuses to run when an applied file has changed).

CREATE SCHEMA IF NOT EXISTS flexcharge;
COMMENT ON SCHEMA flexcharge IS
    'FlexCharge Outbox: the gateway writes payment events into flexcharge.outbox; workers deliver them to FlexCharge.';

-- Raises a check_violation whose message starts with the field's name, e.g.
--   flexcharge.outbox.channel: must be 'cit' or 'mit' (got "web")
-- The COLUMN field of the error carries the field too, for programs.
CREATE FUNCTION flexcharge.reject(p_field text, p_problem text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = format('flexcharge.outbox.%s: %s', p_field, p_problem),
        COLUMN = p_field;
END;
$$;

-- True when a string of 13 to 19 digits passes the Luhn check (the checksum of card numbers).
CREATE FUNCTION flexcharge.is_luhn_valid(p_digits text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_sum int := 0;
    v_digit int;
    v_double boolean := false;
BEGIN
    IF p_digits !~ '^[0-9]{13,19}$' THEN
        RETURN false;
    END IF;
    FOR i IN REVERSE length(p_digits)..1 LOOP
        v_digit := ascii(substr(p_digits, i, 1)) - 48;
        IF v_double THEN
            v_digit := v_digit * 2;
            IF v_digit > 9 THEN v_digit := v_digit - 9; END IF;
        END IF;
        v_sum := v_sum + v_digit;
        v_double := NOT v_double;
    END LOOP;
    RETURN v_sum % 10 = 0;
END;
$$;

-- Finds a plaintext card number in a JSON document and returns the path of the field holding it
-- (e.g. 'payload.paymentMethod.cardNumber'), or NULL when there is none. Never returns the number.
--
-- A field is a card-number field when its key looks like one (cardNumber, card_number, number,
-- pan, accountNumber, ...). Its value is a PAN when, with spaces and dashes removed, it holds a
-- Luhn-valid run of 13-19 digits, unless the object that holds it flags it as a token
-- ("token": true / "Token": true / "isToken": true), as /evaluate does for /tokenize tokens.
CREATE FUNCTION flexcharge.find_plaintext_pan(p_doc jsonb, p_path text DEFAULT 'payload') RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_key text;
    v_value jsonb;
    v_found text;
    v_text text;
    v_run text;
    v_is_token boolean;
BEGIN
    IF jsonb_typeof(p_doc) = 'array' THEN
        FOR i IN 0..jsonb_array_length(p_doc) - 1 LOOP
            v_found := flexcharge.find_plaintext_pan(p_doc -> i, format('%s[%s]', p_path, i));
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        END LOOP;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_doc) <> 'object' THEN
        RETURN NULL;
    END IF;
    v_is_token := coalesce((p_doc ->> 'token') = 'true' OR (p_doc ->> 'Token') = 'true'
                           OR (p_doc ->> 'isToken') = 'true', false);
    FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_doc) LOOP
        IF jsonb_typeof(v_value) IN ('object', 'array') THEN
            v_found := flexcharge.find_plaintext_pan(v_value, p_path || '.' || v_key);
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        ELSIF NOT v_is_token
              AND lower(v_key) ~ '^(card_?number|card_?no|number|pan|primary_?account_?number|account_?number|card)$'
              AND jsonb_typeof(v_value) IN ('string', 'number') THEN
            v_text := regexp_replace(v_value #>> '{}', '[ -]', '', 'g');
            FOR v_run IN SELECT m[1] FROM regexp_matches(v_text, '([0-9]{13,19})', 'g') AS m LOOP
                IF flexcharge.is_luhn_valid(v_run) THEN
                    RETURN p_path || '.' || v_key;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
