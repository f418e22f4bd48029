-- 0035_blank_site_url.sql
--
-- A blank site_url is no site URL: the event's site is then its descriptor.
--
-- WHY: the rule is "each transaction carries its site: site_url, else the descriptor" (0002, 0003). The
-- insert trigger set site := coalesce(site_url, descriptor) (0032), and the request body sends siteUrl
-- whenever site_url is not NULL, the descriptor only when it is (0015, 0030). A gateway that wrote
-- site_url = '' (an empty form field, a driver that writes '' for "no value") with a descriptor got:
--   * site = '', so a site override of the merchant (flexcharge.merchant_sites, keyed by the descriptor)
--     never applied: the event was routed by the merchant's own switches, even where its site's switch
--     said off or sandbox;
--   * "siteUrl": "" sent to FlexCharge, and no transaction.descriptor: the transaction carried no site;
--   * the reports' per-site rows grouped under ''.
-- The insert accepted it, since its check asks for a site_url OR a descriptor that is not blank.
--
-- NOW: a site_url that is empty or only white space (spaces, tabs, line breaks) becomes NULL before
-- anything else reads it. The trigger below fires first (PostgreSQL fires the BEFORE triggers of one
-- event in the order of their names: outbox_0_... comes before outbox_before_insert), so the insert
-- trigger's checks, its site and the request body all see no site_url. Its WHEN condition is evaluated
-- without calling the function, so an insert with a real site_url or none pays only that comparison.
--
-- A blank site_url without a descriptor is refused as before ("site_url or descriptor is required").
-- Rows inserted before this file keep what they had (site_url and site are immutable, 0003, 0032).
--
-- Never edit this file once applied; add a new numbered file.

CREATE FUNCTION flexcharge.outbox_blank_site_url_is_null() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.site_url := NULL;
    RETURN NEW;
END;
$$;
-- A trigger function: no role calls it, so no role may execute it (the trigger runs it regardless).
REVOKE ALL ON FUNCTION flexcharge.outbox_blank_site_url_is_null() FROM PUBLIC;

CREATE TRIGGER outbox_0_blank_site_url BEFORE INSERT ON flexcharge.outbox
    FOR EACH ROW WHEN (NEW.site_url IS NOT NULL AND btrim(NEW.site_url, E' \t\r\n') = '')
    EXECUTE FUNCTION flexcharge.outbox_blank_site_url_is_null();
COMMENT ON TRIGGER outbox_0_blank_site_url ON flexcharge.outbox IS
    'A blank site_url becomes NULL before the insert trigger reads it: the site is then the descriptor (migrations/0035_blank_site_url.sql).';
