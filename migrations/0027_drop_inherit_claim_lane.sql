-- 0027_drop_inherit_claim_lane.sql
--
-- One home for priority inheritance: the insert trigger (flexcharge.outbox_before_insert, 0022).
--
-- 0022 moved the rule "an evaluate raises its order's earlier pending non-transmit events to its
-- lane" into the trigger itself, and left 0014's flexcharge.inherit_claim_lane() behind with the
-- same UPDATE and an EXECUTE grant to the gateway. Nothing calls it since 0022, so it was a second
-- copy of the rule that could drift from the one that runs, and a SECURITY DEFINER entry point the
-- gateway did not need. It is dropped; the gateway's role loses nothing it uses.

DROP FUNCTION flexcharge.inherit_claim_lane(text, text, smallint);
