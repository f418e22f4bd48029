-- The ladder's simplest done (see run): the claimed events succeeded, in one UPDATE, no ledger.
UPDATE flexcharge.outbox
   SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, last_http_status = 200,
       completed_at = now(), updated_at = now()
 WHERE id = ANY (:ids::bigint[]);
