import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// The database roles of migrations/0012_roles.sql, each used through a login made for the test.
@Suite struct RoleTests {
    /// Runs `body` with a migrated database and login roles in the given groups, dropped afterwards.
    private func withLogins(_ groups: [String], _ body: (TestDatabase, TestLogins) async throws -> Void) async throws {
        try await TestDatabase.with { db in
            let logins = try await TestLogins(database: db)
            do {
                for group in groups { try await logins.create(group) }
                try await body(db, logins)
            } catch {
                await logins.drop(groups)
                throw error
            }
            await logins.drop(groups)
        }
    }

    private func expectDenied(_ what: String, _ statement: () async throws -> Void) async {
        let error = await #expect(throws: PGError.self, "\(what)") { try await statement() }
        #expect(error?.sqlState == "42501" || error?.sqlState == "42P01", "\(what): \(error?.description ?? "allowed")")
    }

    @Test func theGatewayInsertsEveryKindAndReadsItsOrdersOutcomesAndNothingMore() async throws {
        try await withLogins(["gateway"]) { db, logins in
            let owner = db.session()
            let gateway = logins.session("gateway")
            defer { Task { await owner.close(); await gateway.close() } }
            try await owner.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('m1', 'sandbox')")
            try await owner.execute(
                "INSERT INTO flexcharge.merchant_credentials (merchant_id, environment, mid, app_key_sealed, app_secret_sealed, key_id) VALUES ('m1', 'sandbox', 'mid', '\\x01', '\\x02', 'k')")

            // Every kind, the evaluate's priority inheritance included (it updates the order's earlier
            // cancel; since 0014 an earlier transmit blocks nothing and is left in its lane).
            let transmit = try await insertEvent(on: gateway, kind: "transmit", orderID: "A-1")
            try await insertEvent(on: gateway, kind: "evaluate", orderID: "A-1")
            let earlyCancel = try await insertEvent(on: gateway, kind: "cancel", orderID: "B-1", channel: "mit", origin: nil, payload: "{}")
            try await insertEvent(on: gateway, kind: "evaluate", orderID: "B-1", channel: "mit", origin: nil)
            try await insertEvent(on: gateway, kind: "cancel", orderID: "A-1", payload: "{}")
            try await insertEvent(on: gateway, kind: "refund", orderID: "A-1", payload: #"{"amountCents": 100}"#)
            try await insertEvent(on: gateway, kind: "capture", orderID: "A-1", payload: #"{"amountCents": 100, "currency": "USD"}"#)
            try await insertEvent(on: gateway, kind: "external_cancel", orderID: "A-1", payload: "{}")
            let claimLane = try await owner.query("SELECT claim_lane FROM flexcharge.outbox WHERE id = $1", [transmit]).first!
            #expect(try claimLane.decode("claim_lane", as: Int.self) == 3)
            let raised = try await owner.query("SELECT claim_lane FROM flexcharge.outbox WHERE id = $1", [earlyCancel]).first!
            #expect(try raised.decode("claim_lane", as: Int.self) == 1)
            // RETURNING of the contract columns, and the order's outcome through the views.
            let returned = try await gateway.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                VALUES ('transmit', 'm1', 'C-1', 'cit', 'website', 's', '{"transaction": {"amount": 1}}', true) RETURNING id, idempotency_key, is_test
                """).first!
            #expect(try UUID(uuidString: returned.decode("idempotency_key", as: String.self)) != nil)
            let events = try await gateway.query(
                "SELECT kind, state FROM flexcharge.order_events WHERE merchant_id = 'm1' AND order_id = 'A-1' ORDER BY id").rows
            #expect(events.count == 6)
            _ = try await gateway.query("SELECT * FROM flexcharge.order_outcomes WHERE merchant_id = 'm1'")

            // Worker-owned columns cannot even be named.
            for column in ["state", "decision", "first_claimed_at", "attempts", "lease_owner", "environment", "lane", "claim_lane", "amount_cents"] {
                let value = switch column {
                case "state": "'succeeded'"
                case "decision": "'APPROVED'"
                case "first_claimed_at": "now() + interval '50 years'"
                case "attempts", "lane", "claim_lane", "amount_cents": "0"
                default: "'x'"
                }
                await expectDenied("insert naming \(column)") {
                    try await gateway.execute(
                        """
                        INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, \(column))
                        VALUES ('evaluate', 'm1', 'F-1', 'cit', 'website', 's', '{"transaction": {"amount": 1500}}', \(value))
                        """)
                }
            }
            await expectDenied("insert with a forced id") {
                try await gateway.execute(
                    "INSERT INTO flexcharge.outbox (id, kind, merchant_id, order_id, channel, origin, site_url, payload) OVERRIDING SYSTEM VALUE VALUES (1, 'transmit', 'm1', 'F-2', 'cit', 'website', 's', '{\"transaction\": {\"amount\": 1}}')")
            }
            await expectDenied("read credentials") { _ = try await gateway.query("SELECT mid FROM flexcharge.merchant_credentials") }
            await expectDenied("read merchants") { _ = try await gateway.query("SELECT * FROM flexcharge.merchants") }
            await expectDenied("read payloads") { _ = try await gateway.query("SELECT payload FROM flexcharge.outbox") }
            await expectDenied("read attempts") { _ = try await gateway.query("SELECT * FROM flexcharge.attempts") }
            await expectDenied("update an event") { try await gateway.execute("UPDATE flexcharge.outbox SET state = 'dead'") }
            await expectDenied("delete an event") { try await gateway.execute("DELETE FROM flexcharge.outbox") }
            await expectDenied("flip a switch") { try await gateway.execute("UPDATE flexcharge.merchants SET cit_website = 'production'") }
            await expectDenied("enrol a merchant") { try await gateway.execute("INSERT INTO flexcharge.merchants (merchant_id) VALUES ('m2')") }
            await expectDenied("disable the guard") { try await gateway.execute("ALTER TABLE flexcharge.outbox DISABLE TRIGGER outbox_before_insert") }
            await expectDenied("replace the guard") {
                try await gateway.execute("CREATE OR REPLACE FUNCTION flexcharge.text_has_pan(p_text text) RETURNS boolean LANGUAGE sql AS 'SELECT false'")
            }
            await expectDenied("skip triggers") { try await gateway.execute("SET session_replication_role = replica") }
            await expectDenied("claim") { _ = try await gateway.query("SELECT * FROM flexcharge.claim('w', 1, ARRAY[1, 1, 1, 1], interval '1 minute')") }
            await expectDenied("rescue") { _ = try await gateway.query("SELECT flexcharge.rescue_expired_leases(3, interval '0 seconds', ARRAY['evaluate'], 8)") }
            await expectDenied("create in the schema") { try await gateway.execute("CREATE TABLE flexcharge.mine (x int)") }
            // The guard holds for the gateway too.
            let refused = await #expect(throws: PGError.self) {
                try await insertEvent(on: gateway, payload: #"{"transaction": {"amount": 1}, "paymentMethod": {"cardNumber": "4111 1111 1111 1111", "token": true}}"#)
            }
            #expect(refused?.column == "payload.paymentMethod.cardNumber")
            let count = try await owner.query("SELECT count(*) AS n FROM flexcharge.outbox").first!.decode("n", as: Int.self)
            #expect(count == 9)
        }
    }

    /// The worker's and serve's statements, through the OutboxEngine API, as flexcharge_worker.
    @Test func theWorkerRoleRunsEveryWorkerStatement() async throws {
        try await withLogins(["worker"]) { db, logins in
            let owner = db.session()
            let worker = logins.session("worker")
            defer { Task { await owner.close(); await worker.close() } }
            try await owner.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'sandbox')")
            try await owner.execute(
                "INSERT INTO flexcharge.merchant_credentials (merchant_id, environment, mid, app_key_sealed, app_secret_sealed, webhook_key_sealed, key_id) VALUES ('m1', 'sandbox', 'mid', '\\x01', '\\x02', '\\x03', 'k')")
            for order in ["o1", "o2", "o3"] { try await insertEvent(on: owner, orderID: order) }
            try await insertEvent(on: owner, kind: "transmit", orderID: "o4")
            let store = OutboxStore()

            let claimed = try await store.claim(on: worker, worker: "w1", total: 4, laneCaps: [4, 4, 4, 4], lease: .seconds(60))
            #expect(claimed.count == 4)
            let renewed = try await store.renewLeases(claimed.map(\.id), worker: "w1", lease: .seconds(60), on: worker)
            #expect(renewed.count == 4)
            try await store.release([claimed[3].id], worker: "w1", on: worker)
            let now = Date()
            let written = try await store.record([
                Completion(eventID: claimed[0].id, attempt: 1, action: .send, environment: "sandbox", startedAt: now, finishedAt: now,
                           httpStatus: 200, outcome: .succeeded, orderSessionKey: "fc-1", decision: "APPROVED"),
                Completion(eventID: claimed[1].id, attempt: 1, action: .send, environment: "sandbox", startedAt: now, finishedAt: now,
                           httpStatus: 200, outcome: .awaitingOutcome, orderSessionKey: "fc-2", decision: "SUBMITTED"),
                Completion(eventID: claimed[2].id, attempt: 1, action: .send, environment: "sandbox", startedAt: now, finishedAt: now,
                           httpStatus: 400, failureClass: "permanent", error: "bad", outcome: .failed, fieldErrors: #"{"a": ["b"]}"#),
            ], worker: "w1", on: worker)
            #expect(written.count == 3)
            _ = try await store.rescueExpiredLeases(policy: RetryPolicy(maxAttempts: 3), hold: .seconds(1), on: worker)
            _ = try await store.laneDepths(on: worker)
            _ = try await worker.query("SELECT * FROM flexcharge.worker_leases")

            // The outcome poller.
            try await owner.execute("UPDATE flexcharge.outbox SET completed_at = now() - interval '1 hour' WHERE id = $1", [claimed[1].id])
            let outcomes = OutcomeStore()
            let due = try await outcomes.claimDue(on: worker, limit: 10, firstDelay: .seconds(0), lease: .seconds(60))
            #expect(due.map(\.eventID) == [claimed[1].id])
            let recorded = try await outcomes.record(
                OutcomeLookup(eventID: claimed[1].id, result: .final(decision: "APPROVED"), httpStatus: 200, startedAt: now, finishedAt: now),
                worker: "w1", on: worker)
            #expect(recorded)

            // serve: the webhook receiver's and the tokenizer's statements (WebhookReceiver.record,
            // subscriberKeys; CardTokenizer), as they are written there.
            _ = try await worker.query(
                "SELECT environment, webhook_key_sealed FROM flexcharge.merchant_credentials WHERE merchant_id = $1 AND webhook_key_sealed IS NOT NULL",
                ["m1"])
            try await worker.execute(
                """
                DELETE FROM flexcharge.webhook_nonces WHERE ctid IN (
                    SELECT ctid FROM flexcharge.webhook_nonces WHERE seen_at < now() - make_interval(secs => $1::float8) LIMIT 100)
                """, [660])
            #expect(try await worker.execute(
                "INSERT INTO flexcharge.webhook_nonces (merchant_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING", ["m1", "n1"]) == 1)
            let inserted = try await worker.query(
                """
                INSERT INTO flexcharge.outcome_events (source, merchant_id, environment, event_id, fc_event, fc_order_id,
                                                       external_order_id, confirmation_id, fc_timestamp, is_test_mode, payload)
                VALUES ('webhook', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
                ON CONFLICT (merchant_id, environment, fc_order_id, fc_event, fc_timestamp) WHERE source = 'webhook' AND refused_reason IS NULL
                DO UPDATE SET deliveries = flexcharge.outcome_events.deliveries + 1, last_delivery_at = now()
                RETURNING id, (xmax = 0) AS inserted
                """, ["m1", "sandbox", claimed[0].id, "order.completed", "fc-1", "o1", "c-1", "2026-11-27T10:00:00Z", true, "{}"]).first!
            try await worker.execute(
                """
                UPDATE flexcharge.outbox SET decision = $2, state = 'succeeded', completed_at = now(), last_error_class = NULL,
                       last_error = NULL, updated_at = now()
                 WHERE id = $1 AND state = 'awaiting_outcome'
                """, [claimed[1].id, "APPROVED"])
            try await worker.execute("UPDATE flexcharge.outcome_events SET decision = $2 WHERE id = $1",
                                     [try inserted.decode("id", as: Int64.self), "APPROVED"])
            _ = try await worker.query(
                """
                SELECT m.merchant_id IS NOT NULL AS known, flexcharge.route($1, $2, $3, $4, $5) AS environment
                  FROM (SELECT 1) one LEFT JOIN flexcharge.merchants m ON m.merchant_id = $1
                """, ["m1", "s", "cit", "website", true])
            // 0002's route() without the test flag, as an operator or a gateway's own tooling may call it.
            _ = try await worker.query("SELECT flexcharge.route($1, $2, $3, $4)", ["m1", "s", "cit", "website"])
            _ = try await worker.query(
                "SELECT mid, app_key_sealed, app_secret_sealed, tokenization_key_sealed FROM flexcharge.merchant_credentials WHERE merchant_id = $1",
                ["m1"])
            // reconcile
            _ = try await worker.query(
                "SELECT order_session_key, order_id, decision, amount_cents FROM flexcharge.outbox WHERE merchant_id = $1 AND kind = 'evaluate'",
                ["m1"])

            // And what it may not do.
            await expectDenied("insert an event") { try await insertEvent(on: worker, orderID: "w-1") }
            await expectDenied("change a payload") { try await worker.execute("UPDATE flexcharge.outbox SET payload = '{}'") }
            await expectDenied("change an amount") { try await worker.execute("UPDATE flexcharge.outbox SET amount_cents = 1") }
            await expectDenied("delete an event") { try await worker.execute("DELETE FROM flexcharge.outbox") }
            await expectDenied("flip a switch") { try await worker.execute("UPDATE flexcharge.merchants SET mit = 'production'") }
            await expectDenied("write credentials") { try await worker.execute("UPDATE flexcharge.merchant_credentials SET mid = 'x'") }
            await expectDenied("rewrite the ledger") { try await worker.execute("DELETE FROM flexcharge.attempts") }
            await expectDenied("disable the guard") { try await worker.execute("ALTER TABLE flexcharge.outbox DISABLE TRIGGER outbox_before_insert") }
        }
    }

    /// The real `flexcharge-outbox worker` process, logged in as a member of flexcharge_worker:
    /// it claims, calls (FlexCharge is unreachable here, so every call fails and is retried),
    /// records, rescues an expired lease, polls an awaiting outcome, LISTENs and reads its metrics,
    /// then drains on SIGTERM, without one permission error.
    @Test func theRealWorkerProcessRunsAsTheWorkerRole() async throws {
        try await withLogins(["worker"]) { db, logins in
            let owner = db.session()
            defer { Task { await owner.close() } }
            let key: [UInt8] = Array(repeating: 9, count: 32)
            let merchants = MerchantStore(session: owner, actor: "test")
            try await merchants.add("m1", name: nil, switches: [.citWebsite: .sandbox, .mit: .sandbox])
            try await merchants.setCredentials("m1", environment: "sandbox", mid: "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                                               secrets: MerchantSecrets(appKey: "k", appSecret: "s"), sealer: try CredentialSealer(keyBytes: key))
            let transmit = try await insertEvent(on: owner, kind: "transmit", orderID: "p-1")
            let evaluate = try await insertEvent(on: owner, kind: "evaluate", orderID: "p-2")
            let awaiting = try await insertEvent(on: owner, kind: "evaluate", orderID: "p-3")
            let stranded = try await insertEvent(on: owner, kind: "transmit", orderID: "p-4")
            try await owner.execute(
                """
                UPDATE flexcharge.outbox SET state = 'awaiting_outcome', environment = 'sandbox', order_session_key = 'fc-3',
                       attempts = 1, first_claimed_at = now() - interval '1 hour', completed_at = now() - interval '1 hour',
                       next_attempt_at = now() WHERE id = $1
                """, [awaiting])
            try await owner.execute(
                """
                UPDATE flexcharge.outbox SET state = 'running', environment = 'sandbox', attempts = 1, lease_owner = 'gone',
                       lease_expires_at = now() - interval '1 minute', first_claimed_at = now() - interval '2 minutes' WHERE id = $1
                """, [stranded])

            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = logins.url(user: logins.name("worker"))
            environment["FLEXCHARGE_CREDENTIALS_KEY"] = Data(key).base64EncodedString()
            environment.removeValue(forKey: "FLEXCHARGE_CREDENTIALS_KEYS")
            environment.removeValue(forKey: "FLEXCHARGE_CREDENTIALS_KEY_FILE")
            let worker = try ChildProcess(PackagePaths.executable("flexcharge-outbox"), [
                "worker", "--sandbox-url", "http://127.0.0.1:9", "--production-url", "http://127.0.0.1:9", "--http-port", "0",
                "--poll-interval-ms", "100", "--backoff-base-ms", "20", "--backoff-cap-seconds", "0.2", "--max-attempts", "50",
                "--connect-timeout-seconds", "1", "--log-level", "debug",
            ], environment: environment)
            let deadline = ContinuousClock.now + .seconds(30)
            var settled = false
            while ContinuousClock.now < deadline, worker.isRunning {
                settled = try await owner.query(
                    """
                    SELECT (SELECT count(DISTINCT event_id) FROM flexcharge.attempts
                             WHERE event_id = ANY($1::bigint[]) AND action IN ('send', 'lookup') AND worker <> 'rescuer') = 2
                       AND EXISTS (SELECT 1 FROM flexcharge.attempts WHERE event_id = $2 AND action = 'lease_expired')
                       AND (SELECT outcome_polls > 0 FROM flexcharge.outbox WHERE id = $3) AS done
                    """, [[transmit, evaluate], stranded, awaiting]).first!.decode("done", as: Bool.self)
                if settled { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            worker.send(SIGTERM)
            let result = await worker.wait()
            #expect(settled, "the worker did not claim, record, rescue and poll in time: \(result.stderr.suffix(2000))")
            #expect(result.status == 0)
            #expect(!result.stderr.localizedCaseInsensitiveContains("permission denied"), "\(result.stderr.suffix(2000))")
            #expect(!result.stdout.localizedCaseInsensitiveContains("permission denied"))
        }
    }

    /// The operator's CLI actions (merchant add/set/credentials/show/list/history/rotate, status,
    /// report, events, retry, skip) through the OutboxEngine API and the CLI's queries.
    @Test func theOperatorRoleManagesMerchantsAndRetriesButCannotActAsGatewayOrWorker() async throws {
        try await withLogins(["operator"]) { db, logins in
            let owner = db.session()
            let operatorSession = logins.session("operator")
            defer { Task { await owner.close(); await operatorSession.close() } }
            let merchants = MerchantStore(session: operatorSession, actor: "alice")
            try await merchants.add("m1", name: "Shoes", switches: [.citWebsite: .sandbox])
            try await merchants.set("m1", site: nil, name: "Shoes R Us", switches: [.mit: .sandbox])
            try await merchants.set("m1", site: "https://shop.example", name: nil, switches: [.citWebsite: .production])
            let sealer = try CredentialSealer(keyBytes: [UInt8](repeating: 7, count: 32))
            try await merchants.setCredentials("m1", environment: "sandbox", mid: "mid-1",
                                               secrets: MerchantSecrets(appKey: "k", appSecret: "s"), sealer: sealer)
            try await merchants.setCredentials("m1", environment: "sandbox", mid: "mid-2",
                                               secrets: MerchantSecrets(appKey: "k2", appSecret: "s2"), sealer: sealer)
            _ = try await merchants.rotateCredentials(sealer: sealer, dryRun: true)
            #expect(try await merchants.settings("m1")?.credentials["sandbox"] == "mid-2")
            #expect(try await merchants.list().count == 1)
            #expect(try await merchants.history("m1").count >= 6)

            let failed = try await insertEvent(on: owner, orderID: "o1")
            let dead = try await insertEvent(on: owner, kind: "transmit", orderID: "o2")
            let pending = try await insertEvent(on: owner, kind: "transmit", orderID: "o3")
            try await owner.execute("UPDATE flexcharge.outbox SET state = 'failed', completed_at = now() WHERE id = $1", [failed])
            try await owner.execute("UPDATE flexcharge.outbox SET state = 'dead', completed_at = now() WHERE id = $1", [dead])
            let actions = OperatorActions(session: operatorSession, actor: "alice")
            _ = try await actions.retry(failed)
            _ = try await actions.retryDead(merchant: "m1", since: nil)
            try await actions.skip(pending, reason: "duplicate")
            for view in ["order_events", "order_outcomes", "daily_report", "queue_health", "worker_leases"] {
                _ = try await operatorSession.query("SELECT * FROM flexcharge.\(view)")
            }
            _ = try await operatorSession.query("SELECT state, count(*)::bigint AS n FROM flexcharge.outbox GROUP BY state")
            _ = try await operatorSession.query(
                "SELECT id, created_at, merchant_id, order_id, kind, channel, origin, state, decision, attempts, last_error FROM flexcharge.outbox")
            _ = try await operatorSession.query("SELECT * FROM flexcharge.attempts WHERE event_id = $1", [failed])

            await expectDenied("insert an event") { try await insertEvent(on: operatorSession, orderID: "x") }
            await expectDenied("read payloads") { _ = try await operatorSession.query("SELECT payload FROM flexcharge.outbox") }
            await expectDenied("write a decision") { try await operatorSession.execute("UPDATE flexcharge.outbox SET decision = 'APPROVED'") }
            await expectDenied("open a window") { try await operatorSession.execute("UPDATE flexcharge.outbox SET first_claimed_at = NULL") }
            await expectDenied("delete an event") { try await operatorSession.execute("DELETE FROM flexcharge.outbox") }
            await expectDenied("claim") { _ = try await operatorSession.query("SELECT * FROM flexcharge.claim('w', 1, ARRAY[1, 1, 1, 1], interval '1 minute')") }
            await expectDenied("erase the audit") { try await operatorSession.execute("DELETE FROM flexcharge.merchant_audit") }
            await expectDenied("disable the guard") { try await operatorSession.execute("ALTER TABLE flexcharge.outbox DISABLE TRIGGER outbox_before_insert") }
        }
    }

    /// The console's user store is the console's (0037): an operator's login can neither read the bcrypt hashes,
    /// TOTP secrets or sessions nor give itself an account, a role or a session; the console's login can, and
    /// may do what an operator may.
    @Test func onlyTheConsoleRoleReadsAndWritesTheConsolesAccountsAndSessions() async throws {
        try await withLogins(["operator", "console"]) { db, logins in
            let owner = db.session()
            let operatorSession = logins.session("operator"), console = logins.session("console")
            defer { Task { await owner.close(); await operatorSession.close(); await console.close() } }
            try await owner.execute(
                """
                INSERT INTO flexcharge.console_accounts (name, role, password_hash, totp_secret, created_by)
                VALUES ('root', 'admin', '$2b$12$abcdefghijklmnopqrstuuJ3yUoT9ZpXwq0yKXc1VQpLw1mNnQ1uG', 'JBSWY3DPEHPK3PXP', 'test')
                """)
            let reads = [
                "SELECT password_hash FROM flexcharge.console_accounts", "SELECT totp_secret FROM flexcharge.console_accounts",
                "SELECT name, role FROM flexcharge.console_accounts", "SELECT token_hash, csrf_token FROM flexcharge.console_sessions",
                "SELECT * FROM flexcharge.console_signin_failures", "SELECT * FROM flexcharge.console_settings",
            ]
            let writes = [
                "UPDATE flexcharge.console_accounts SET role = 'admin'", "UPDATE flexcharge.console_accounts SET totp_secret = NULL",
                "INSERT INTO flexcharge.console_accounts (name, role, password_hash, created_by) VALUES ('mallory', 'admin', NULL, 'x')",
                """
                INSERT INTO flexcharge.console_sessions (token_hash, account_id, csrf_token, expires_at, method)
                SELECT sha256('chosen'::bytea), 1, 'c', now() + interval '1 day', 'password'
                """,
                "DELETE FROM flexcharge.console_signin_failures", "UPDATE flexcharge.console_settings SET require_totp = false",
                "INSERT INTO flexcharge.console_audit (actor, action, subject) VALUES ('x', 'add', 'mallory')",
            ]
            for statement in reads + writes {
                await expectDenied("operator: \(statement)") { try await operatorSession.execute(statement) }
            }
            // What the operator keeps: the console's audit trail, which holds no secret.
            _ = try await operatorSession.query("SELECT actor, action, subject FROM flexcharge.console_audit")
            // The console's login does all of it, and what an operator may (merchants, the queue, retries' columns).
            for statement in reads { _ = try await console.query(statement) }
            try await console.execute("UPDATE flexcharge.console_settings SET require_totp = true")
            try await console.execute(
                """
                INSERT INTO flexcharge.console_sessions (token_hash, account_id, csrf_token, expires_at, method)
                SELECT sha256('real'::bytea), id, 'c', now() + interval '1 day', 'password' FROM flexcharge.console_accounts WHERE name = 'root'
                """)
            try await console.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('via-console', 'sandbox')")
            _ = try await console.query("SELECT * FROM flexcharge.queue_health")
            await expectDenied("console: read raw payloads") { _ = try await console.query("SELECT payload FROM flexcharge.outbox") }
        }
    }

    /// The roles exist once per cluster, and the migrations run again in another database of the
    /// same server without failing (tests and deployments migrate many databases of one server).
    @Test func rolesAreNoLoginGroupsAndTheMigrationIsRepeatable() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let roles = try await session.query(
                "SELECT rolname::text AS name, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'flexcharge\\_%' ORDER BY 1").rows
            #expect(try roles.map { try $0.decode("name", as: String.self) } == ["flexcharge_console", "flexcharge_gateway", "flexcharge_operator", "flexcharge_worker"])
            #expect(try roles.allSatisfy { row in try !row.decode("rolcanlogin", as: Bool.self) && !(try row.decode("rolsuper", as: Bool.self)) })
            // Another database of the same server migrates from scratch while the roles already exist.
            try await TestDatabase.withEmpty { other in
                let migrator = other.session()
                do {
                    _ = try await PGMigrator(migrations: try Migration.load(directory: PackagePaths.migrations)).migrate(on: migrator)
                } catch {
                    await migrator.close()
                    throw error
                }
                await migrator.close()
            }
            // PUBLIC can execute no function of the schema.
            let public_ = try await session.query(
                """
                SELECT count(*) AS n FROM pg_proc p
                 WHERE p.pronamespace = 'flexcharge'::regnamespace
                   AND has_function_privilege('public', p.oid, 'EXECUTE')
                """).first!.decode("n", as: Int.self)
            #expect(public_ == 0)
        }
    }
}
