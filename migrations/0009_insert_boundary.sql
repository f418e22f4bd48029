-- 0009_insert_boundary.sql
--
-- The insert into flexcharge.outbox is a trust boundary: the gateway writes the contract columns,
-- everything else belongs to the workers. This file replaces the insert trigger of 0003 and the
-- card-number detector of 0001, and adds the event kind `capture`.
--
-- WHAT THE GATEWAY WRITES (the contract; nothing else is taken from an insert):
--   kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload, idempotency_key
-- Every other column is set by the insert trigger whatever the insert said and whatever the role
-- (the owner included): state 'pending', next_action 'send', attempts 0, next_attempt_at now(),
-- created_at now(), updated_at now(), outcome_polls 0, and NULL for lease_owner, lease_expires_at,
-- first_claimed_at, environment, transaction_key, order_session_key, decision, last_http_status,
-- last_error_class, last_error, field_errors, completed_at. lane, claim_lane, amount_cents and
-- currency are derived from the contract columns. (The role flexcharge_gateway of 0012 cannot even
-- name those columns in an INSERT: it is refused with "permission denied".)
-- `id` is the identity; only a role with table-wide INSERT (the owner) can force one with
-- OVERRIDING SYSTEM VALUE.
--
-- A NEW COLUMN that workers write must be added to the reset list in
-- flexcharge.outbox_before_insert() below (Tests/SchemaTests checks that every column of the
-- table is either a contract column or reset by the trigger).
--
-- KINDS AND LANES (the lane is where an event queues for claiming; flexcharge.lane_of() is the one
-- home of this rule, and flexcharge.queue_health names the lanes):
--   lane 0  evaluate, channel cit      a shopper is waiting
--   lane 1  evaluate, channel mit
--   lane 2  cancel, refund, capture, external_cancel (follow-ups)
--   lane 3  transmit
--
-- CHECKED AT INSERT, each with an error whose message starts with the field and whose COLUMN
-- names it (SQLSTATE 23514), in this order: kind, merchant_id, order_id, channel, origin, site,
-- payload (JSON object, at most 64 KiB), credentials, amounts, isMIT, card numbers, idempotency key.
--   transmit, evaluate  payload.transaction.amount: whole cents (integer, 0 to 15 digits)
--   refund, capture     payload.amountCents: whole cents above 0
--   capture             payload.currency, optional: three upper-case letters (ISO 4217)
--
-- CREDENTIALS: no key anywhere in the payload, at any depth and in any letter case, may be one of
-- AppKey, AppSecret, ApiKey, ApiSecret, ClientSecret, accessToken, refreshToken, bearerToken,
-- tokenizationKey, webhookKey, webhookSecret, subscriberKey, password ('-', '_', '.' and spaces
-- inside the key are ignored: app_key, App-Key count too). The error names the key's path.
--
-- THE PAN GUARD (flexcharge.text_has_pan): a plaintext card number is refused wherever it is: in
-- any string or number of the payload at any depth (arrays included), whatever the key and
-- whatever flags sit beside it ("token": true does not exempt a number that is a card number:
-- FlexCharge's /tokenize tokens are GUIDs or 27-letter strings, never Luhn-valid digit runs), in a
-- payload key, and in the descriptor, site_url and idempotency_key columns. The error names the
-- field (payload.payer.notes, descriptor, ...) and never contains the number.
-- A value holds a card number when it contains a digit run that, read as below, has a window that
-- is a card number:
--   * digits are ASCII digits or any Unicode decimal digit (full-width, Arabic-Indic, Devanagari,
--     ...: every block of Unicode category Nd), read as 0-9;
--   * digit groups may be separated by one to three separator characters: spaces (tab, NBSP and
--     every other Unicode space, zero-width ones included), dashes (ASCII and Unicode), dots,
--     slashes, backslashes, underscores (and their full-width forms), tab, newline, carriage
--     return, form feed, backspace; letters, ':', ',', '+', quotes, brackets and other control
--     characters end a run (other controls are written \u00XX in a jsonb text form, and accepting
--     that form doubled the cost of the scan);
--   * windows are whole groups: consecutive groups of 3 or more digits each (groups of 1 or 2
--     digits, as in "12/25", are never part of a window, unless every group of the run has 1 or 2
--     digits: "4 1 1 1 ..." is read as one number), 13 to 19 digits long; and a window may carry
--     glued digits written without a separator: its first 15 or 16 digits when a CVV (3 digits),
--     an expiry MMYY (or Amex's 4-digit CID) or MMYY + CVV follow, or its last 15 or 16 digits
--     when an MMYY precedes (MM being 01-12);
--   * a window is a card number when it passes the Luhn check AND its prefix and length are those
--     of a card brand (flexcharge.card_brand_length_ok: Visa 4 with 16 or 19 digits,
--     Mastercard 51-55 / 2221-2720 with 16, Amex 34/37 with 15, Diners 300-305/3095/36/38/39 with
--     14-19, JCB 3528-3589, Mir 2200-2204, Discover/UnionPay/Maestro/RuPay/InterPayment 50, 56-58,
--     60, 62, 6304, 636-639, 644-649, 65, 67, 81, 82 with 16-19, Troy 9792 with 16);
--   * a run written right after '+' is a phone number, not a card number; a run right after two
--     capital letters that forms with them an IBAN with a valid check (mod 97) is an IBAN.
-- 13-digit Visa numbers (not issued for decades) are not recognised: 13 digits starting with 4 is
-- also every German or Japanese EAN-13 product code (40-49), and one in ten passes the Luhn check.
-- Not caught (a determined sender can always encode a number): a card number split across two
-- JSON values (including an array of its digit groups), encoded (base64, hex, reversed, words).
-- So epoch milliseconds (13 digits starting with 1), yyyyMMdd... timestamps, phone numbers, GUIDs,
-- IBANs and most order ids pass; the rates are measured in Tests/SchemaTests (PANGuardTests).
-- Cost: one regular expression over the payload's text form for an ordinary payload; the field
-- path is looked for only when a card number was found (the insert is refused anyway).
--
-- Never edit this file once applied; add a new numbered file.

-- The lane of an event (see above): the one home of this rule.
CREATE FUNCTION flexcharge.lane_of(p_kind text, p_channel text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE
        WHEN p_kind = 'evaluate' AND p_channel = 'cit' THEN 0
        WHEN p_kind = 'evaluate' THEN 1
        WHEN p_kind = 'transmit' THEN 3
        ELSE 2
    END)::smallint
$$;

-- The capture kind (POST /v1/capture for an order in CAPTUREREQUIRED). The new constraint only
-- widens the old one, so no row can fail it.
ALTER TABLE flexcharge.outbox DROP CONSTRAINT outbox_kind_valid;
ALTER TABLE flexcharge.outbox ADD CONSTRAINT outbox_kind_valid
    CHECK (kind IN ('transmit', 'evaluate', 'cancel', 'refund', 'capture', 'external_cancel')) NOT VALID;
ALTER TABLE flexcharge.outbox VALIDATE CONSTRAINT outbox_kind_valid;

-- ---------------------------------------------------------------------------------------------
-- The PAN guard.

-- The zero of every block of Unicode decimal digits (category Nd; each block runs 0-9).
CREATE FUNCTION flexcharge.unicode_digit_zeros() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[
        48, 1632, 1776, 1984, 2406, 2534, 2662, 2790, 2918, 3046, 3174,
        3302, 3430, 3558, 3664, 3792, 3872, 4160, 4240, 6112, 6160, 6470,
        6608, 6784, 6800, 6992, 7088, 7232, 7248, 42528, 43216, 43264, 43472,
        43504, 43600, 44016, 65296, 66720, 68912, 69734, 69872, 69942, 70096, 70384,
        70736, 70864, 71248, 71360, 71472, 71904, 72016, 72784, 73040, 73120, 92768,
        92864, 93008, 120782, 120792, 120802, 120812, 120822, 123200, 123632, 125264, 130032]
$$;

-- Regular-expression pieces (constant; PostgreSQL folds the calls when it plans the statements
-- that use them). A digit: any decimal digit. A separator: see the header.
CREATE FUNCTION flexcharge.pan_digit_class() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '[' || string_agg(format('\U%s-\U%s', lpad(to_hex(z), 8, '0'), lpad(to_hex(z + 9), 8, '0')), '') || ']'
      FROM unnest(flexcharge.unicode_digit_zeros()) AS z
$$;

CREATE FUNCTION flexcharge.pan_separator() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '(?:[ \t\n\r\f\b\u00a0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff'
        || '\u2010-\u2015\u2212\ufe58\ufe63\uff0d'           -- dashes
        || '.\u00b7\u2024\u2027\u30fb\uff0e\uff61'           -- dots
        || '/\\\u2044\u2215\uff0f\uff3c_\uff3f-]'             -- slashes, backslash, underscore, '-'
        || '|\\[tnrfb])'                                      -- JSON's escapes in a text form
$$;

-- A run of at least 13 digits with separators between them.
CREATE FUNCTION flexcharge.pan_candidate_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT flexcharge.pan_digit_class() || '(?:' || flexcharge.pan_separator() || '{0,3}'
        || flexcharge.pan_digit_class() || '){12,}'
$$;

-- The same, capturing what stands right before it: a '+' (a phone number) or two capital letters
-- (perhaps an IBAN's country code): (prefix)(run).
CREATE FUNCTION flexcharge.pan_match_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '(\+' || flexcharge.pan_separator() || '{0,2}|[A-Z]{2})?(' || flexcharge.pan_candidate_pattern() || ')'
$$;

-- Every Unicode decimal digit mapped to its ASCII digit.
CREATE FUNCTION flexcharge.ascii_digits(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT translate(p_text,
                     (SELECT string_agg(chr(z + i), '' ORDER BY o, i)
                        FROM unnest(flexcharge.unicode_digit_zeros()) WITH ORDINALITY AS u(z, o),
                             generate_series(0, 9) AS i
                       WHERE z <> 48),
                     repeat('0123456789', cardinality(flexcharge.unicode_digit_zeros()) - 1))
$$;

-- True when a digit string has the prefix (IIN) and the length of a card brand.
CREATE FUNCTION flexcharge.card_brand_length_ok(p_digits text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN left(p_digits, 1) = '4' THEN length(p_digits) IN (16, 19)   -- Visa (13-digit Visa: see the header)
        WHEN left(p_digits, 2) BETWEEN '51' AND '55'
          OR left(p_digits, 4) BETWEEN '2221' AND '2720' THEN length(p_digits) = 16               -- Mastercard
        WHEN left(p_digits, 2) IN ('34', '37') THEN length(p_digits) = 15                        -- Amex
        WHEN left(p_digits, 3) BETWEEN '300' AND '305' OR left(p_digits, 4) = '3095'
          OR left(p_digits, 2) IN ('36', '38', '39') THEN length(p_digits) BETWEEN 14 AND 19     -- Diners
        WHEN left(p_digits, 4) BETWEEN '3528' AND '3589' THEN length(p_digits) BETWEEN 16 AND 19 -- JCB
        WHEN left(p_digits, 4) BETWEEN '2200' AND '2204' THEN length(p_digits) BETWEEN 16 AND 19 -- Mir
        WHEN left(p_digits, 2) IN ('50', '56', '57', '58', '60', '62', '65', '67', '81', '82')
          OR left(p_digits, 3) BETWEEN '636' AND '639' OR left(p_digits, 3) BETWEEN '644' AND '649'
          OR left(p_digits, 4) = '6304' THEN length(p_digits) BETWEEN 16 AND 19  -- Discover, UnionPay, Maestro, RuPay
        WHEN left(p_digits, 4) = '9792' THEN length(p_digits) = 16                               -- Troy
        ELSE false
    END
$$;

-- True when a digit string is a card number: a card brand's prefix and length, and the Luhn check.
CREATE FUNCTION flexcharge.is_card_number(p_digits text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT flexcharge.card_brand_length_ok(p_digits) AND flexcharge.is_luhn_valid(p_digits)
$$;

-- True when a run of digits and separators (one match of pan_candidate_pattern) holds a card
-- number, by the window rules of the header.
CREATE FUNCTION flexcharge.run_has_pan(p_run text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_groups text[];
    v_count integer;
    v_window text;
    v_length integer;
BEGIN
    v_groups := array_remove(regexp_split_to_array(flexcharge.ascii_digits(p_run),
                                                   flexcharge.pan_separator() || '+'), '');
    v_count := cardinality(v_groups);
    IF v_count > 1 AND NOT EXISTS (SELECT 1 FROM unnest(v_groups) AS g WHERE length(g) > 2) THEN
        v_groups := ARRAY[array_to_string(v_groups, '')];   -- written a digit or two at a time
        v_count := 1;
    END IF;
    FOR i IN 1..v_count LOOP
        CONTINUE WHEN v_count > 1 AND length(v_groups[i]) < 3;
        v_window := '';
        FOR j IN i..v_count LOOP
            EXIT WHEN v_count > 1 AND length(v_groups[j]) < 3;
            v_window := v_window || v_groups[j];
            v_length := length(v_window);
            EXIT WHEN v_length > 23;
            IF v_length BETWEEN 13 AND 19 AND flexcharge.is_card_number(v_window) THEN
                RETURN true;
            END IF;
            -- A 15- or 16-digit card number with digits glued on, no separator between:
            -- CVV after it; MMYY (or Amex's 4-digit CID) after it; MMYY + CVV after it; MMYY before it.
            IF (v_length - 3 IN (15, 16) AND flexcharge.is_card_number(left(v_window, v_length - 3)))
               OR (v_length - 4 IN (15, 16)
                   AND (v_length = 19 OR substr(v_window, v_length - 3, 2) BETWEEN '01' AND '12')
                   AND flexcharge.is_card_number(left(v_window, v_length - 4)))
               OR (v_length - 7 IN (15, 16) AND substr(v_window, v_length - 6, 2) BETWEEN '01' AND '12'
                   AND flexcharge.is_card_number(left(v_window, v_length - 7)))
               OR (v_length - 4 IN (15, 16) AND left(v_window, 2) BETWEEN '01' AND '12'
                   AND flexcharge.is_card_number(right(v_window, v_length - 4))) THEN
                RETURN true;
            END IF;
        END LOOP;
    END LOOP;
    RETURN false;
END;
$$;

-- True when letters and digits form an IBAN with a valid check (ISO 13616 mod 97), e.g. the two
-- letters before a digit run and the run's digits: an IBAN's digits are not a card number.
CREATE FUNCTION flexcharge.is_iban(p_letters text, p_digits text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT length(p_digits) BETWEEN 13 AND 32 AND p_letters ~ '^[A-Z]{2}$' AND p_digits ~ '^[0-9]+$'
       AND (substr(p_digits, 3) || (ascii(substr(p_letters, 1, 1)) - 55)::text
            || (ascii(substr(p_letters, 2, 1)) - 55)::text || left(p_digits, 2))::numeric % 97 = 1
$$;

-- True when a text holds a plaintext card number (the rules of the header). The first test is the
-- whole cost for an ordinary text: no run of 13 digits, no further work.
CREATE FUNCTION flexcharge.text_has_pan(p_text text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_match text[];
    v_text text := p_text;
BEGIN
    IF v_text !~ flexcharge.pan_candidate_pattern() THEN
        RETURN false;
    END IF;
    -- GUIDs (the contract's idempotency keys, FlexCharge's order ids) are not card numbers, even when
    -- their hex groups happen to be all digits (1 in about 2 000 random v4 UUIDs then holds a Luhn-valid
    -- window with a card prefix). Only looked for once a candidate was seen, so it costs nothing usually.
    v_text := regexp_replace(v_text, '[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}', ' ', 'g');
    IF v_text !~ flexcharge.pan_candidate_pattern() THEN
        RETURN false;
    END IF;
    FOR v_match IN SELECT regexp_matches(v_text, flexcharge.pan_match_pattern(), 'g') LOOP
        CONTINUE WHEN left(v_match[1], 1) = '+';   -- a phone number
        CONTINUE WHEN v_match[1] IS NOT NULL       -- an IBAN: country code, then digits only
                  AND flexcharge.is_iban(v_match[1], regexp_replace(flexcharge.ascii_digits(v_match[2]), '[^0-9]', '', 'g'));
        IF flexcharge.run_has_pan(v_match[2]) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END;
$$;

-- The path of the first key or scalar of a JSON document that holds a card number (a key is
-- reported as the object holding it, so the path never contains the number), or NULL.
CREATE FUNCTION flexcharge.pan_field(p_doc jsonb, p_path text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_key text;
    v_value jsonb;
    v_found text;
BEGIN
    CASE jsonb_typeof(p_doc)
    WHEN 'object' THEN
        FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_doc) LOOP
            IF flexcharge.text_has_pan(v_key) THEN
                RETURN p_path;
            END IF;
            v_found := flexcharge.pan_field(v_value, p_path || '.' || v_key);
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        END LOOP;
    WHEN 'array' THEN
        FOR i IN 0..jsonb_array_length(p_doc) - 1 LOOP
            v_found := flexcharge.pan_field(p_doc -> i, format('%s[%s]', p_path, i));
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        END LOOP;
    WHEN 'string', 'number' THEN
        IF flexcharge.text_has_pan(p_doc #>> '{}') THEN
            RETURN p_path;
        END IF;
    ELSE
        NULL;
    END CASE;
    RETURN NULL;
END;
$$;

-- Replaces 0001's detector (same signature): the path of the field of p_doc holding a plaintext
-- card number, or NULL. Only the text form is scanned unless it holds a card number.
CREATE OR REPLACE FUNCTION flexcharge.find_plaintext_pan(p_doc jsonb, p_path text DEFAULT 'payload') RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF p_doc IS NULL OR NOT flexcharge.text_has_pan(p_doc::text) THEN
        RETURN NULL;
    END IF;
    -- The text form holds one, so some field does; 'payload' is a safe fallback.
    RETURN coalesce(flexcharge.pan_field(p_doc, p_path), p_path);
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Credentials at any depth.

-- A superset of the credential keys, as they appear in a jsonb text form ("Key": ...), for a
-- cheap first test; flexcharge.is_credential_key decides.
CREATE FUNCTION flexcharge.credential_key_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '"(app|api|client|access|refresh|bearer|tokenization|webhook|subscriber)[-_ .]?(key|secret|token)"'
        || '|"pass[-_ .]?word"'
$$;

CREATE FUNCTION flexcharge.is_credential_key(p_key text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT lower(regexp_replace(p_key, '[-_ .]', '', 'g')) IN
        ('appkey', 'appsecret', 'apikey', 'apisecret', 'clientsecret', 'accesstoken', 'refreshtoken',
         'bearertoken', 'tokenizationkey', 'webhookkey', 'webhooksecret', 'subscriberkey', 'password')
$$;

-- The path of the first credential key of a JSON document, at any depth, or NULL.
CREATE FUNCTION flexcharge.credential_field(p_doc jsonb, p_path text DEFAULT 'payload') RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_key text;
    v_value jsonb;
    v_found text;
BEGIN
    IF jsonb_typeof(p_doc) = 'object' THEN
        FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_doc) LOOP
            IF flexcharge.is_credential_key(v_key) THEN
                RETURN p_path || '.' || v_key;
            END IF;
            v_found := flexcharge.credential_field(v_value, p_path || '.' || v_key);
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        END LOOP;
    ELSIF jsonb_typeof(p_doc) = 'array' THEN
        FOR i IN 0..jsonb_array_length(p_doc) - 1 LOOP
            v_found := flexcharge.credential_field(p_doc -> i, format('%s[%s]', p_path, i));
            IF v_found IS NOT NULL THEN RETURN v_found; END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Priority inheritance with the owner's rights.
--
-- An order's earlier pending events are claimed at the priority of its most urgent later event
-- (a CIT evaluate must not wait behind a transmit backlog because its own order's transmit sits in
-- it). That UPDATE touches other rows, which the gateway's role may not update: it runs here, as
-- the function's owner. It only ever lowers claim_lane of pending events of the given order down
-- to p_lane (0-2), which is what inserting an event of that lane for that order does anyway, so
-- calling it directly gives nothing an insert does not. EXECUTE: the gateway role (0012); never
-- PUBLIC.
-- (PL/pgSQL, not SQL: it keeps its plan for the session; a SQL function was planned at every call,
-- about 70 µs per evaluate insert.)
CREATE FUNCTION flexcharge.inherit_claim_lane(p_merchant_id text, p_order_id text, p_lane smallint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE flexcharge.outbox
       SET claim_lane = p_lane
     WHERE merchant_id = p_merchant_id AND order_id = p_order_id
       AND state = 'pending' AND claim_lane > p_lane AND p_lane BETWEEN 0 AND 2;
END;
$$;
REVOKE ALL ON FUNCTION flexcharge.inherit_claim_lane(text, text, smallint) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- The insert trigger, version 2 (replaces 0003's function; the trigger itself is unchanged).
-- search_path is pinned: the gateway's session cannot put its own functions or operators in
-- front of the built-ins the checks use.
CREATE OR REPLACE FUNCTION flexcharge.outbox_before_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text text;
    v_field text;
    v_amount jsonb;
BEGIN
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('transmit', 'evaluate', 'cancel', 'refund', 'capture', 'external_cancel') THEN
        PERFORM flexcharge.reject('kind', format('must be one of transmit, evaluate, cancel, refund, capture, external_cancel (got %s)', coalesce(quote_literal(NEW.kind), 'NULL')));
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
    v_text := NEW.payload::text;
    IF octet_length(v_text) > 65536 THEN
        PERFORM flexcharge.reject('payload', 'is larger than 64 KiB');
    END IF;
    IF v_text ~* flexcharge.credential_key_pattern() THEN
        v_field := flexcharge.credential_field(NEW.payload, 'payload');
        IF v_field IS NOT NULL THEN
            PERFORM flexcharge.reject(v_field, 'must not carry FlexCharge credentials (they come from flexcharge.merchant_credentials)');
        END IF;
    END IF;

    -- Amounts are integer cents, as FlexCharge expects them.
    NEW.amount_cents := NULL;
    NEW.currency := NULL;
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
    ELSIF NEW.kind IN ('refund', 'capture') THEN
        v_amount := NEW.payload -> 'amountCents';
        IF v_amount IS NULL OR jsonb_typeof(v_amount) <> 'number' OR (v_amount #>> '{}') !~ '^[0-9]{1,15}$'
           OR (v_amount #>> '{}')::bigint = 0 THEN
            PERFORM flexcharge.reject('payload.amountCents', format('is required: the amount to %s in whole cents, above 0', NEW.kind));
        END IF;
        NEW.amount_cents := (v_amount #>> '{}')::bigint;
        IF NEW.kind = 'capture' AND NEW.payload ? 'currency' THEN
            IF jsonb_typeof(NEW.payload -> 'currency') <> 'string' OR (NEW.payload ->> 'currency') !~ '^[A-Z]{3}$' THEN
                PERFORM flexcharge.reject('payload.currency', 'must be three upper-case letters (ISO 4217, e.g. USD)');
            END IF;
            NEW.currency := NEW.payload ->> 'currency';
        END IF;
    END IF;

    -- The PAN guard: payload (any depth, keys too), descriptor, site_url, idempotency_key.
    IF flexcharge.text_has_pan(concat_ws('|', v_text, NEW.descriptor, NEW.site_url, NEW.idempotency_key)) THEN
        v_field := CASE
            WHEN flexcharge.text_has_pan(v_text) THEN coalesce(flexcharge.pan_field(NEW.payload, 'payload'), 'payload')
            WHEN flexcharge.text_has_pan(coalesce(NEW.descriptor, '')) THEN 'descriptor'
            WHEN flexcharge.text_has_pan(coalesce(NEW.site_url, '')) THEN 'site_url'
            ELSE 'idempotency_key'
        END;
        PERFORM flexcharge.reject(v_field,
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

    NEW.lane := flexcharge.lane_of(NEW.kind, NEW.channel);
    NEW.claim_lane := NEW.lane;

    -- Every column the workers own, whatever the insert said (see the header).
    NEW.created_at := now();
    NEW.state := 'pending';
    NEW.next_action := 'send';
    NEW.attempts := 0;
    NEW.next_attempt_at := now();
    NEW.lease_owner := NULL;
    NEW.lease_expires_at := NULL;
    NEW.first_claimed_at := NULL;
    NEW.environment := NULL;
    NEW.transaction_key := NULL;
    NEW.order_session_key := NULL;
    NEW.decision := NULL;
    NEW.last_http_status := NULL;
    NEW.last_error_class := NULL;
    NEW.last_error := NULL;
    NEW.field_errors := NULL;
    NEW.completed_at := NULL;
    NEW.updated_at := now();
    NEW.outcome_polls := 0;

    -- Priority inheritance: this order's earlier pending events run first (per-order order), so
    -- they must be claimed at this event's priority (with the owner's rights, see above).
    IF NEW.lane < 3 THEN
        PERFORM flexcharge.inherit_claim_lane(NEW.merchant_id, NEW.order_id, NEW.lane);
    END IF;
    RETURN NEW;
END;
$$;
