-- The ladder's queue (see ladder): :events transmits of about 1 KB for the merchant `bench`, in the
-- real flexcharge.outbox through the gateway's own insert (its trigger and guards), then the state a
-- drain starts from: vacuumed, analyzed, checkpointed. Empties outbox and attempts first, so it runs
-- only on a throwaway database (scripts/bench's own cluster).
TRUNCATE flexcharge.outbox, flexcharge.attempts;
INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
SELECT 'transmit', 'bench', 'ladder-' || g, 'cit', 'website', 'https://bench.example',
       jsonb_build_object('isDeclined', false, 'orderSource', 'ecommerce',
           'transaction', jsonb_build_object('id', 'psp', 'amount', 1500, 'currency', 'USD', 'responseCode', '00',
                                             'responseCodeSource', 'NMI', 'avsResultCode', 'M', 'cvvResultCode', 'M',
                                             'cavvResultCode', 'NA', 'timestampUtc', '2026-11-26T10:00:00Z'),
           'payer', jsonb_build_object('email', 'shopper@example.com'),
           'paymentMethod', jsonb_build_object('holderName', 'Joe', 'cardBrand', 'VISA', 'cardLast4Digits', '3184'),
           'additionalFields', jsonb_build_array(jsonb_build_object('key', 'note', 'value', repeat('x', 700))))
  FROM generate_series(1, :events) g;
VACUUM ANALYZE flexcharge.outbox;
VACUUM ANALYZE flexcharge.attempts;
CHECKPOINT;
