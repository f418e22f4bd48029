#!/usr/bin/env python3
"""A gateway writing a declined payment and its FlexCharge evaluate in one transaction, then waiting
for the outcome (psycopg 3).

    DATABASE_URL=postgresql://gateway_app:...@db/gateway python3 gateway_example.py MERCHANT ORDER [AMOUNT_CENTS]

Prints one JSON line: {"event_id", "inserted", "state", "decision", "order_session_key", "last_error"}.
Exits 0 when the evaluate reached an outcome, 1 when none came within WAIT_SECONDS (default 30).
Run it twice with the same order: the second run inserts nothing (dedupe_key) and reports the same event.
"""

import json
import os
import select
import sys
import time
from pathlib import Path

import psycopg

# The FlexCharge /evaluate body the gateway builds from its declined payment: no credentials and no
# card number (a /v1/tokenize token). orderId, isMIT, siteUrl and mid are added from the columns.
PAYLOAD = json.loads((Path(__file__).resolve().parent.parent / "declined-payment.json").read_text())
# An outcome: the evaluate is no longer waiting for a worker (CHALLENGE and SUBMITTED arrive as
# awaiting_outcome, with the order_session_key the checkout needs).
WAITING = {"pending", "running"}


def record_declined_payment(conn, merchant_id, order_id, amount_cents):
    """The payment row and its outbox event, committed together or not at all. Both inserts are
    idempotent, so a gateway that lost the answer to COMMIT simply runs this again. Returns
    (event id, whether this call inserted it)."""
    payload = dict(PAYLOAD, transaction=dict(PAYLOAD["transaction"], id=f"psp-{order_id}", amount=amount_cents))
    with conn.transaction():
        conn.execute(
            """INSERT INTO payments (merchant_id, order_id, amount_cents, status)
               VALUES (%s, %s, %s, 'declined')
               ON CONFLICT (merchant_id, order_id) DO NOTHING""",
            (merchant_id, order_id, amount_cents))
        row = conn.execute(
            """INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
               VALUES ('evaluate', %s, %s, 'cit', 'website', 'https://shoes.example', %s, %s)
               ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
               RETURNING id""",
            (merchant_id, order_id, json.dumps(payload), f"{order_id}/evaluate")).fetchone()
        if row is not None:
            return row[0], True
        # Inserted by an earlier run: the dedupe key finds it.
        row = conn.execute(
            "SELECT id FROM flexcharge.outbox WHERE merchant_id = %s AND dedupe_key = %s",
            (merchant_id, f"{order_id}/evaluate")).fetchone()
        return row[0], False


def wait_for_outcome(conn, event_id, seconds):
    """Reads the event from flexcharge.order_events until it has an outcome. LISTEN (issued before the
    insert) wakes the loop at once; the query is the truth, so a missed notification costs at most
    one poll interval."""
    deadline = time.monotonic() + seconds
    while True:
        # Running a statement also reads the notifications that arrived meanwhile.
        state, decision, session_key, last_error = conn.execute(
            """SELECT state, decision, order_session_key, last_error
                 FROM flexcharge.order_events WHERE id = %s""", (event_id,)).fetchone()
        left = deadline - time.monotonic()
        if state not in WAITING or left <= 0:
            return {"state": state, "decision": decision, "order_session_key": session_key, "last_error": last_error}
        # Sleep until a notification arrives on this connection, or poll again after 5 s.
        select.select([conn.fileno()], [], [], min(left, 5.0))


def main():
    merchant_id, order_id = sys.argv[1], sys.argv[2]
    amount_cents = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS payments (
                            merchant_id text NOT NULL, order_id text NOT NULL, amount_cents integer NOT NULL,
                            status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                            PRIMARY KEY (merchant_id, order_id))""")
        # LISTEN before the insert commits, so the outcome's notification cannot come too early.
        conn.execute("LISTEN flexcharge_event_done")
        event_id, inserted = record_declined_payment(conn, merchant_id, order_id, amount_cents)
        outcome = wait_for_outcome(conn, event_id, float(os.environ.get("WAIT_SECONDS", "30")))
    print(json.dumps({"event_id": event_id, "inserted": inserted, **outcome}))
    return 1 if outcome["state"] in WAITING else 0


if __name__ == "__main__":
    sys.exit(main())
