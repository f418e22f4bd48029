import Foundation
import LibPQ
import Testing
import TestSupport

/// What the insert trigger takes from the gateway (the contract columns) and what it sets itself.
@Suite struct InsertBoundaryTests {
    /// The columns the gateway writes, and those the insert trigger resets or derives. A column
    /// added by a later migration must be put in one of the two (and, if workers write it, reset
    /// in flexcharge.outbox_before_insert()).
    static let contract: Set<String> = [
        "kind", "merchant_id", "order_id", "channel", "origin", "site_url", "descriptor", "payload", "idempotency_key",
        "is_test", "dedupe_key",
    ]
    static let setByTheTrigger: Set<String> = [
        "id", "created_at", "site", "lane", "claim_lane", "amount_cents", "currency", "state", "next_action", "attempts",
        "next_attempt_at", "lease_owner", "lease_expires_at", "first_claimed_at", "environment", "transaction_key",
        "order_session_key", "decision", "last_http_status", "last_error_class", "last_error", "field_errors",
        "completed_at", "updated_at", "outcome_polls",
    ]

    @Test func everyOutboxColumnIsEitherTheGatewaysOrSetAtInsert() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let columns = Set(try await session.query(
                """
                SELECT attname::text AS name FROM pg_attribute
                 WHERE attrelid = 'flexcharge.outbox'::regclass AND attnum > 0 AND NOT attisdropped
                """).rows.map { try $0.decode("name", as: String.self) })
            #expect(columns.subtracting(Self.contract).subtracting(Self.setByTheTrigger).isEmpty,
                    "unclassified outbox columns: \(columns.subtracting(Self.contract).subtracting(Self.setByTheTrigger).sorted())")
        }
    }

    /// Even the owner (this test's superuser) cannot forge what workers own: an approved decision,
    /// a 24 h window that starts in 50 years, a lease, a final state.
    @Test func workerOwnedColumnsAreResetWhateverTheInsertSays() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let id: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload,
                    state, next_action, attempts, next_attempt_at, lease_owner, lease_expires_at, first_claimed_at,
                    environment, transaction_key, order_session_key, decision, last_http_status, last_error_class,
                    last_error, field_errors, completed_at, updated_at, outcome_polls, created_at,
                    lane, claim_lane, amount_cents, currency)
                VALUES ('evaluate', 'm1', 'o1', 'cit', 'website', 'https://shop.example', '{"transaction": {"amount": 1500, "currency": "USD"}}',
                    'succeeded', 'lookup', 7, now() + interval '1 year', 'forger', now() + interval '1 year', now() + interval '50 years',
                    'production', 'tx-1', 'fc-order-1', 'APPROVED', 200, 'permanent',
                    'forged', '{"a": ["b"]}', now(), now() + interval '1 year', 9, now() - interval '3 days',
                    3, 3, 99999999, 'EUR')
                RETURNING id
                """).first!.decode("id")
            let row = try await session.query(
                """
                SELECT state, next_action, attempts, next_attempt_at <= now() AS due, lease_owner, lease_expires_at IS NULL AS no_lease,
                       first_claimed_at IS NULL AS unclaimed, environment, transaction_key, order_session_key, decision,
                       last_http_status, last_error_class, last_error, field_errors IS NULL AS no_field_errors,
                       completed_at IS NULL AS open, updated_at <= now() AS updated_now, outcome_polls,
                       created_at > now() - interval '1 minute' AS created_now, lane, claim_lane, amount_cents, currency
                  FROM flexcharge.outbox WHERE id = $1
                """, [id]).first!
            #expect(try row.decode("state", as: String.self) == "pending")
            #expect(try row.decode("next_action", as: String.self) == "send")
            #expect(try row.decode("attempts", as: Int.self) == 0)
            #expect(try row.decode("due", as: Bool.self))
            #expect(try row.decode("lease_owner", as: String?.self) == nil)
            #expect(try row.decode("no_lease", as: Bool.self))
            #expect(try row.decode("unclaimed", as: Bool.self))
            #expect(try row.decode("environment", as: String?.self) == nil)
            #expect(try row.decode("transaction_key", as: String?.self) == nil)
            #expect(try row.decode("order_session_key", as: String?.self) == nil)
            #expect(try row.decode("decision", as: String?.self) == nil)
            #expect(try row.decode("last_http_status", as: Int?.self) == nil)
            #expect(try row.decode("last_error_class", as: String?.self) == nil)
            #expect(try row.decode("last_error", as: String?.self) == nil)
            #expect(try row.decode("no_field_errors", as: Bool.self))
            #expect(try row.decode("open", as: Bool.self))
            #expect(try row.decode("updated_now", as: Bool.self))
            #expect(try row.decode("outcome_polls", as: Int.self) == 0)
            #expect(try row.decode("created_now", as: Bool.self))
            #expect(try row.decode("lane", as: Int.self) == 0)
            #expect(try row.decode("claim_lane", as: Int.self) == 0)
            #expect(try row.decode("amount_cents", as: Int64.self) == 1500)
            #expect(try row.decode("currency", as: String.self) == "USD")
            // So the report counts nothing rescued, and the event waits to be sent.
            let report = try await session.query("SELECT approved, approved_cents, pending FROM flexcharge.daily_report").first!
            #expect(try report.decode("approved", as: Int.self) == 0)
            #expect(try report.decode("approved_cents", as: Int64.self) == 0)
            #expect(try report.decode("pending", as: Int.self) == 0)
        }
    }

    @Test func captureIsAFollowUpWithWholeCentsAndAnOptionalCurrency() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let transmit = try await insertEvent(on: session, kind: "transmit", orderID: "c-1")
            let capture = try await insertEvent(on: session, kind: "capture", orderID: "c-1",
                                                payload: #"{"amountCents": 1234, "currency": "EUR"}"#)
            let noCurrency = try await insertEvent(on: session, kind: "capture", orderID: "c-2", payload: #"{"amountCents": 1}"#)
            let rows = try await session.query(
                "SELECT id, lane, claim_lane, amount_cents, currency FROM flexcharge.outbox WHERE id = ANY($1::bigint[]) ORDER BY id",
                [[transmit, capture, noCurrency]]).rows
            #expect(try rows.map { try $0.decode("lane", as: Int.self) } == [3, 2, 2])
            // The order's earlier transmit keeps its lane: since 0014 it holds back nothing but later
            // transmits, so it is not claimed at the capture's priority (before 0014: [2, 2, 2]).
            #expect(try rows.map { try $0.decode("claim_lane", as: Int.self) } == [3, 2, 2])
            #expect(try rows[1].decode("amount_cents", as: Int64.self) == 1234)
            #expect(try rows[1].decode("currency", as: String.self) == "EUR")
            #expect(try rows[2].decode("currency", as: String?.self) == nil)
            for (payload, field) in [
                (#"{}"#, "payload.amountCents"), (#"{"amountCents": 0}"#, "payload.amountCents"),
                (#"{"amountCents": 12.5}"#, "payload.amountCents"), (#"{"amountCents": "1234"}"#, "payload.amountCents"),
                (#"{"amountCents": 1234, "currency": "eur"}"#, "payload.currency"),
                (#"{"amountCents": 1234, "currency": 978}"#, "payload.currency"),
                (#"{"amountCents": 1234, "currency": "EURO"}"#, "payload.currency"),
            ] {
                let error = await #expect(throws: PGError.self) { try await insertEvent(on: session, kind: "capture", payload: payload) }
                #expect(error?.column == field, "\(payload): \(error?.message ?? "accepted")")
            }
        }
    }

    @Test func credentialsAreRefusedAtAnyDepthInAnyLetterCase() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            for (payload, field) in [
                (#"{"transaction": {"amount": 1}, "AppKey": "k"}"#, "payload.AppKey"),
                (#"{"transaction": {"amount": 1}, "merchant": {"appSecret": "s"}}"#, "payload.merchant.appSecret"),
                (#"{"transaction": {"amount": 1}, "auth": [{"x": 1}, {"accessToken": "t"}]}"#, "payload.auth[1].accessToken"),
                (#"{"transaction": {"amount": 1}, "a": {"b": {"APP_SECRET": "s"}}}"#, "payload.a.b.APP_SECRET"),
                (#"{"transaction": {"amount": 1}, "x": {"App-Key": "k"}}"#, "payload.x.App-Key"),
                (#"{"transaction": {"amount": 1}, "session": {"refreshToken": "r"}}"#, "payload.session.refreshToken"),
            ] {
                let error = await #expect(throws: PGError.self) { try await insertEvent(on: session, payload: payload) }
                #expect(error?.column == field, "\(payload): \(error?.message ?? "accepted")")
                #expect(error?.message.contains("credentials") == true)
            }
            // Names that merely contain such words are fine.
            try await insertEvent(on: session, payload: #"{"transaction": {"amount": 1}, "senseKey": "k", "idempotencyKey": "i", "orderSessionKey": "o", "paymentMethod": {"token": true}}"#)
        }
    }
}
