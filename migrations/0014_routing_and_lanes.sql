-- 0014_routing_and_lanes.sql
--
-- TEST TRAFFIC BESIDE LIVE TRAFFIC
--
-- A merchant already live on a channel can still send the transactions of its own test
-- environment to FlexCharge's sandbox: the gateway marks such an event with
--
--   is_test   boolean NOT NULL DEFAULT false   (a contract column: the gateway writes it at insert,
--                                              it is fixed for the event's life like the others)
--
-- A test event of an ENROLLED merchant routes to 'sandbox' whatever the merchant's or the site's
-- switch says (also when the switch is 'off' or 'production'), so it is sent with the merchant's
-- sandbox credentials (claim() joins credentials by the routed environment). A test event of a
-- merchant that is not enrolled stays 'off' (skipped), like any event of an unknown merchant.
-- Reports keep test and live traffic apart by this column.

ALTER TABLE flexcharge.outbox ADD COLUMN is_test boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN flexcharge.outbox.is_test IS
    'Set by the gateway: a test-environment transaction. Routed to FlexCharge''s sandbox (sandbox credentials) whatever the merchant''s switch, if the merchant is enrolled; see migrations/0014_routing_and_lanes.sql.';

-- Grants (0012's rules): a new contract column is inserted and read back by the gateway and read
-- by the operator; workers read every column (0012) and never write this one.
GRANT INSERT (is_test), SELECT (is_test) ON flexcharge.outbox TO flexcharge_gateway;
GRANT SELECT (is_test) ON flexcharge.outbox TO flexcharge_operator;
