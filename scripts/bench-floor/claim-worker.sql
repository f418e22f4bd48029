-- The ladder's real claim (see run): the worker's own claim statement, flexcharge.claim_for_worker()
-- (lanes, fairness, per-order order, pauses, breakers, routing, request bodies), 100 events a claim.
-- Sets :ids, :attempts, :environments.
SELECT array_agg(id) AS ids, array_agg(attempts) AS attempts, array_agg(environment) AS environments,
       sum(octet_length(request_body)) AS bytes
  FROM flexcharge.claim_for_worker('ladder', 100, ARRAY[100, 100, 100, 100], 60) \gset
