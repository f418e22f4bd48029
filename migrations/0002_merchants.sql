-- 0002_merchants.sql
--
-- Who uses FlexCharge, on which channel, against which FlexCharge environment.
--
-- Each merchant has three switches, one per channel, each 'off', 'sandbox' or 'production':
--   cit_website      customer-initiated orders placed on a website
--   cit_call_center  customer-initiated orders keyed in by a call center (MOTO)
--   mit              merchant-initiated transactions (rebills, subscriptions)
-- so MIT can be live while CIT is still in sandbox, or call center off while websites are live.
-- A site (a website or campaign: the event's site_url, else its descriptor) may override any switch.
-- The worker resolves the switches when it claims an event, so a change applies to every event
-- claimed after it. An event whose channel resolves to 'off' is marked 'skipped' and never sent.

-- The values a switch can take.
CREATE DOMAIN flexcharge.switch AS text
    CHECK (VALUE IN ('off', 'sandbox', 'production'));

CREATE TABLE flexcharge.merchants (
    merchant_id      text PRIMARY KEY,          -- the gateway's merchant id (= outbox.merchant_id)
    name             text,
    cit_website      flexcharge.switch NOT NULL DEFAULT 'off',
    cit_call_center  flexcharge.switch NOT NULL DEFAULT 'off',
    mit              flexcharge.switch NOT NULL DEFAULT 'off',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE flexcharge.merchants IS
    'Merchants enrolled in FlexCharge and their per-channel switches (off / sandbox / production). Events of merchants not listed here are skipped.';

-- Per-site overrides; NULL means "as the merchant".
CREATE TABLE flexcharge.merchant_sites (
    merchant_id      text NOT NULL REFERENCES flexcharge.merchants ON DELETE CASCADE,
    site             text NOT NULL,             -- matches outbox.site: site_url, else descriptor
    cit_website      flexcharge.switch,
    cit_call_center  flexcharge.switch,
    mit              flexcharge.switch,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, site)
);
COMMENT ON TABLE flexcharge.merchant_sites IS
    'Per-site (website or campaign) overrides of a merchant''s channel switches; NULL inherits the merchant''s value.';

-- FlexCharge credentials, one set per merchant and environment. Secrets are sealed with
-- AES-256-GCM by flexcharge-outbox using a key that is NOT in the database (environment variable
-- or file), so a dump of this table reveals nothing usable. The MID is not secret.
CREATE TABLE flexcharge.merchant_credentials (
    merchant_id             text NOT NULL REFERENCES flexcharge.merchants ON DELETE CASCADE,
    environment             text NOT NULL CHECK (environment IN ('sandbox', 'production')),
    mid                     text NOT NULL,      -- FlexCharge merchant id (GUID)
    app_key_sealed          bytea NOT NULL,
    app_secret_sealed       bytea NOT NULL,
    tokenization_key_sealed bytea,
    webhook_key_sealed      bytea,              -- webhook subscriber key, for signature checks
    key_id                  text NOT NULL,      -- which encryption key sealed the values
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, environment)
);
COMMENT ON TABLE flexcharge.merchant_credentials IS
    'FlexCharge credentials per merchant and environment; secret columns are AES-GCM sealed outside the database.';

-- Every change to the tables above: who, when, what, old -> new. Secret values are never
-- recorded, only that they were set or changed.
CREATE TABLE flexcharge.merchant_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    merchant_id  text NOT NULL,
    action       text NOT NULL,                 -- add, set, site, credentials, ...
    field        text NOT NULL,
    old_value    text,
    new_value    text
);
CREATE INDEX merchant_audit_by_merchant ON flexcharge.merchant_audit (merchant_id, at);
COMMENT ON TABLE flexcharge.merchant_audit IS 'Audit trail of merchant settings changes (secrets shown only as set/changed).';

-- Resolves where an event goes: 'off', 'sandbox' or 'production', from the merchant's switch
-- for the event's channel and origin, overridden by the site's switch when one is set.
-- An unknown merchant is 'off'.
CREATE FUNCTION flexcharge.route(p_merchant_id text, p_site text, p_channel text, p_origin text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT CASE
                    WHEN p_channel = 'mit' THEN coalesce(s.mit, m.mit)
                    WHEN p_origin = 'call_center' THEN coalesce(s.cit_call_center, m.cit_call_center)
                    ELSE coalesce(s.cit_website, m.cit_website)
                END
           FROM flexcharge.merchants m
           LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = m.merchant_id AND s.site = p_site
          WHERE m.merchant_id = p_merchant_id),
        'off')
$$;
