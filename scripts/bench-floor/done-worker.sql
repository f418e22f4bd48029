-- The ladder's real done (see run): the worker's outcome writer, flexcharge.record_outcomes()
-- (outcome, attempt ledger, lease fencing), every event succeeded. The arrays go as text parameters
-- here, whatever format the worker sends them in.
SELECT count(*) AS written
  FROM flexcharge.record_outcomes('ladder', :ids::bigint[], :attempts::integer[],
           array_fill('send'::text, ARRAY[cardinality(:ids::bigint[])]), :environments::text[],
           array_fill(now(), ARRAY[cardinality(:ids::bigint[])]), array_fill(now(), ARRAY[cardinality(:ids::bigint[])]),
           array_fill(1.5::float8, ARRAY[cardinality(:ids::bigint[])]), array_fill(200, ARRAY[cardinality(:ids::bigint[])]),
           NULL, NULL, array_fill('succeeded'::text, ARRAY[cardinality(:ids::bigint[])]),
           array_fill('send'::text, ARRAY[cardinality(:ids::bigint[])]),
           NULL, NULL, NULL, NULL, NULL, false) \gset
