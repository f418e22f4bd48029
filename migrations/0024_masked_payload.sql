-- 0024_masked_payload.sql
--
-- An event's payload as the ops console shows it: with every card field masked. The operator role
-- cannot read flexcharge.outbox.payload (0012: it is the gateway's data); it may ask for the masked
-- form of one event, and nothing else of the payload:
--
--   SELECT flexcharge.masked_payload(4711);     -- NULL for an unknown event
--
-- WHAT IS MASKED (flexcharge.mask_card_data below, the one home of this rule), at any depth,
-- arrays included:
--   * the value of a card field, whatever it holds (a PAN, a /tokenize token, a CVV): a key that,
--     lower-cased and without '-', '_', '.' and spaces, is one of cardnumber, cardnum, ccnumber,
--     ccnum, creditcardnumber, creditcard, number, pan, cvv, cvv2, cvc, cvc2, cid, csc,
--     securitycode, cardsecuritycode, verificationvalue, cardverificationvalue, track1, track2,
--     trackdata (flexcharge.is_card_field_key) -> "[masked]" (an object or array under such a key is
--     replaced whole);
--   * the value of a credential key (flexcharge.is_credential_key, 0009) -> "[masked]";
--   * any other string or number that holds a card number by the PAN guard's rules
--     (flexcharge.text_has_pan, 0009: every disguise the insert guard refuses) -> "[card number masked]";
--   * a key that holds a card number -> "[masked key N]".
-- Kept: what a card's metadata says (cardBinNumber, cardLast4Digits, cardBrand, expirationMonth,
-- holderName, ...), which is what FlexCharge's /transmit itself carries instead of a PAN.
-- The insert guard already refuses card numbers and credentials; this is the second line, for rows
-- written before the guard or by the owner with triggers disabled, and for token values.
--
-- Grants (0012's rules): masked_payload() runs with its owner's rights (it reads payload), pins
-- search_path, and may be executed by flexcharge_operator only; mask_card_data() and
-- is_card_field_key() by nobody but the owner.
--
-- Never edit this file once applied; add a new numbered file.

-- True when a JSON key names a card field (the list above).
CREATE FUNCTION flexcharge.is_card_field_key(p_key text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT lower(regexp_replace(p_key, '[-_ .]', '', 'g')) IN
        ('cardnumber', 'cardnum', 'ccnumber', 'ccnum', 'creditcardnumber', 'creditcard', 'number', 'pan',
         'cvv', 'cvv2', 'cvc', 'cvc2', 'cid', 'csc', 'securitycode', 'cardsecuritycode', 'verificationvalue',
         'cardverificationvalue', 'track1', 'track2', 'trackdata')
$$;

-- A JSON document with its card data masked (the rules above).
CREATE FUNCTION flexcharge.mask_card_data(p_doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_out jsonb;
    v_key text;
    v_value jsonb;
    v_masked_keys integer := 0;
BEGIN
    CASE jsonb_typeof(p_doc)
    WHEN 'object' THEN
        v_out := '{}'::jsonb;
        FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_doc) LOOP
            IF flexcharge.is_card_field_key(v_key) OR flexcharge.is_credential_key(v_key) THEN
                IF jsonb_typeof(v_value) NOT IN ('null', 'boolean') THEN
                    v_value := to_jsonb('[masked]'::text);
                END IF;
            ELSE
                v_value := flexcharge.mask_card_data(v_value);
            END IF;
            IF flexcharge.text_has_pan(v_key) THEN
                v_masked_keys := v_masked_keys + 1;
                v_key := format('[masked key %s]', v_masked_keys);
            END IF;
            v_out := v_out || jsonb_build_object(v_key, v_value);
        END LOOP;
        RETURN v_out;
    WHEN 'array' THEN
        SELECT coalesce(jsonb_agg(flexcharge.mask_card_data(element) ORDER BY position), '[]'::jsonb)
          INTO v_out
          FROM jsonb_array_elements(p_doc) WITH ORDINALITY AS a(element, position);
        RETURN v_out;
    WHEN 'string', 'number' THEN
        IF flexcharge.text_has_pan(p_doc #>> '{}') THEN
            RETURN to_jsonb('[card number masked]'::text);
        END IF;
        RETURN p_doc;
    ELSE
        RETURN p_doc;
    END CASE;
END;
$$;

-- One event's payload, masked; NULL when there is no such event.
CREATE FUNCTION flexcharge.masked_payload(p_event_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT flexcharge.mask_card_data(payload) FROM flexcharge.outbox WHERE id = p_event_id
$$;
COMMENT ON FUNCTION flexcharge.masked_payload(bigint) IS
    'An event''s payload with card fields, card numbers and credentials masked: what the ops console shows. See migrations/0024_masked_payload.sql.';

REVOKE ALL ON FUNCTION flexcharge.is_card_field_key(text), flexcharge.mask_card_data(jsonb),
                       flexcharge.masked_payload(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flexcharge.masked_payload(bigint) TO flexcharge_operator;
