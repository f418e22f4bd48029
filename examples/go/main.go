// A gateway writing a declined payment and its FlexCharge evaluate in one transaction, then waiting
// for the outcome (database/sql with lib/pq).
//
//	DATABASE_URL=postgresql://gateway_app:...@db/gateway go run . MERCHANT ORDER [AMOUNT_CENTS]
//
// Prints one JSON line: {"event_id", "inserted", "state", "decision", "order_session_key", "last_error"}.
// Exits 0 when the evaluate reached an outcome, 1 when none came within WAIT_SECONDS (default 30).
// Run it twice with the same order: the second run inserts nothing (dedupe_key) and reports the same event.
package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lib/pq"
)

// outcome is what the checkout needs: CHALLENGE and SUBMITTED arrive as awaiting_outcome, with the
// order_session_key that shows FlexCharge's challenge.
type outcome struct {
	EventID         int64   `json:"event_id"`
	Inserted        bool    `json:"inserted"`
	State           string  `json:"state"`
	Decision        *string `json:"decision"`
	OrderSessionKey *string `json:"order_session_key"`
	LastError       *string `json:"last_error"`
}

func (o outcome) waiting() bool { return o.State == "pending" || o.State == "running" }

func main() {
	merchantID, orderID := os.Args[1], os.Args[2]
	amountCents := 1500
	if len(os.Args) > 3 {
		amountCents = must(strconv.Atoi(os.Args[3]))
	}
	waitSeconds := 30.0
	if value := os.Getenv("WAIT_SECONDS"); value != "" {
		waitSeconds = must(strconv.ParseFloat(value, 64))
	}
	url := os.Getenv("DATABASE_URL")
	db := must(sql.Open("postgres", url))
	defer db.Close()
	must(db.Exec(`CREATE TABLE IF NOT EXISTS payments (
	                  merchant_id text NOT NULL, order_id text NOT NULL, amount_cents integer NOT NULL,
	                  status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
	                  PRIMARY KEY (merchant_id, order_id))`))

	// LISTEN (on a connection of the listener's own) before the insert commits, so the outcome's
	// notification cannot come too early.
	listener := pq.NewListener(url, time.Second, 10*time.Second, nil)
	defer listener.Close()
	check(listener.Listen("flexcharge_event_done"))

	eventID, inserted := recordDeclinedPayment(db, merchantID, orderID, amountCents)
	result := waitForOutcome(db, listener, eventID, time.Duration(waitSeconds*float64(time.Second)))
	result.EventID, result.Inserted = eventID, inserted
	fmt.Println(string(must(json.Marshal(result))))
	if result.waiting() {
		os.Exit(1)
	}
}

// recordDeclinedPayment writes the payment row and its outbox event, committed together or not at
// all. Both inserts are idempotent, so a gateway that lost the answer to COMMIT simply runs this again.
func recordDeclinedPayment(db *sql.DB, merchantID, orderID string, amountCents int) (int64, bool) {
	payload := evaluateBody(orderID, amountCents)
	dedupeKey := orderID + "/evaluate"
	tx := must(db.Begin())
	defer tx.Rollback() // no effect after Commit
	must(tx.Exec(`INSERT INTO payments (merchant_id, order_id, amount_cents, status)
	              VALUES ($1, $2, $3, 'declined')
	              ON CONFLICT (merchant_id, order_id) DO NOTHING`, merchantID, orderID, amountCents))
	var eventID int64
	inserted := true
	err := tx.QueryRow(`INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, dedupe_key)
	                    VALUES ('evaluate', $1, $2, 'cit', 'website', 'https://shoes.example', $3, $4)
	                    ON CONFLICT (merchant_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
	                    RETURNING id`, merchantID, orderID, payload, dedupeKey).Scan(&eventID)
	if err == sql.ErrNoRows {
		// Inserted by an earlier run: the dedupe key finds it.
		inserted = false
		err = tx.QueryRow(`SELECT id FROM flexcharge.outbox WHERE merchant_id = $1 AND dedupe_key = $2`,
			merchantID, dedupeKey).Scan(&eventID)
	}
	check(err)
	check(tx.Commit())
	return eventID, inserted
}

// evaluateBody is the FlexCharge /evaluate body the gateway builds from its declined payment: no
// credentials and no card number (a /v1/tokenize token). orderId, isMIT, siteUrl and mid are added
// from the columns.
func evaluateBody(orderID string, amountCents int) string {
	var body map[string]any
	check(json.Unmarshal(must(os.ReadFile(filepath.Join("..", "declined-payment.json"))), &body))
	transaction := body["transaction"].(map[string]any)
	transaction["id"], transaction["amount"] = "psp-"+orderID, amountCents
	return string(must(json.Marshal(body)))
}

// waitForOutcome reads the event from flexcharge.order_events until it has an outcome. The listener
// wakes the loop at once; the query is the truth, so a missed notification costs at most one poll.
func waitForOutcome(db *sql.DB, listener *pq.Listener, eventID int64, wait time.Duration) outcome {
	deadline := time.Now().Add(wait)
	for {
		var result outcome
		check(db.QueryRow(`SELECT state, decision, order_session_key, last_error
		                     FROM flexcharge.order_events WHERE id = $1`, eventID).
			Scan(&result.State, &result.Decision, &result.OrderSessionKey, &result.LastError))
		left := time.Until(deadline)
		if !result.waiting() || left <= 0 {
			return result
		}
		// Wait for a notification, or poll again after 5 s.
		select {
		case <-listener.Notify:
		case <-time.After(shorter(left, 5*time.Second)):
		}
	}
}

func shorter(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func must[T any](value T, err error) T {
	check(err)
	return value
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway example:", err)
		os.Exit(2)
	}
}
