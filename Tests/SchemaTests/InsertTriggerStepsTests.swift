import Foundation
import LibPQ
import Testing
import TestSupport

/// migrations/0032_insert_trigger_steps.sql: the amount's test without a regular expression, and
/// `site` an ordinary column the insert trigger sets (it was a generated column).
@Suite struct InsertTriggerStepsTests {
    /// is_whole_cents_text() answers exactly as 0009's '^[0-9]{1,15}$' for generated texts of ASCII
    /// and other digits, signs, points, exponents, spaces, newlines and lengths around 15, and for
    /// the text form of generated JSON numbers.
    @Test func theAmountTestIsTheOldPattern() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let row = try await session.query(
                """
                WITH alphabet AS (
                         SELECT ARRAY['0', '1', '5', '9', '0', '7', '-', '.', 'e', 'E', '+', ' ', E'\\n', chr(1633), chr(65297), 'a', ''] AS a),
                     texts AS (
                         SELECT n, string_agg(a[1 + floor(random() * cardinality(a))::int], '') AS t
                           FROM alphabet, generate_series(1, 20000) AS n, generate_series(1, 18) AS i
                          WHERE i <= n % 19
                          GROUP BY n
                         UNION ALL
                         SELECT -n, (to_jsonb(CASE n % 4 WHEN 0 THEN round(random() * 10 ^ (n % 18))
                                                          WHEN 1 THEN round((random() * 10 ^ (n % 18))::numeric, n % 3)
                                                          WHEN 2 THEN -round(random() * 1000)
                                                          ELSE (10 ^ (n % 20))::numeric END) #>> '{}')
                           FROM generate_series(1, 5000) AS n
                         UNION ALL
                         SELECT 0, NULL)
                SELECT count(*) FILTER (WHERE t ~ '^[0-9]{1,15}$') AS old_yes,
                       count(*) FILTER (WHERE t !~ '^[0-9]{1,15}$') AS old_no,
                       count(*) FILTER (WHERE (t ~ '^[0-9]{1,15}$') IS DISTINCT FROM flexcharge.is_whole_cents_text(t)) AS differ
                  FROM texts
                """).first!
            #expect(try row.decode("old_yes", as: Int.self) > 1_000)
            #expect(try row.decode("old_no", as: Int.self) > 5_000)
            #expect(try row.decode("differ", as: Int.self) == 0)
        }
    }

    /// site is the rule's (site_url, else descriptor) whatever an insert says, cannot change
    /// afterwards, and no role but the owner may even name it.
    @Test func siteIsTheRulesAndNoRoleCanSetOrChangeIt() async throws {
        try await TestDatabase.with { db in
            let logins = try await TestLogins(database: db)
            let groups = ["gateway", "worker", "operator"]
            do {
                for group in groups { try await logins.create(group) }
                let owner = db.session()
                let gateway = logins.session("gateway")
                let worker = logins.session("worker")
                let operatorSession = logins.session("operator")
                defer { Task { await owner.close(); await gateway.close(); await worker.close(); await operatorSession.close() } }

                let byURL = try await insertEvent(on: gateway, kind: "transmit", orderID: "s-1", siteURL: "https://a.example", descriptor: "DESC")
                let byDescriptor = try await insertEvent(on: gateway, kind: "transmit", orderID: "s-2", siteURL: nil, descriptor: "DESC")
                let blankURL = try await insertEvent(on: gateway, kind: "transmit", orderID: "s-3", siteURL: "", descriptor: "DESC")
                // The owner may name the column; the trigger writes the rule's value over it.
                let forged = try await owner.query(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, site)
                    VALUES ('transmit', 'm1', 's-4', 'cit', 'website', 'https://b.example', '{"transaction": {"amount": 1}}', 'https://forged.example')
                    RETURNING id
                    """).first!.decode("id", as: Int64.self)
                // A blank site_url is no site URL (0035): the site is the descriptor.
                for (id, site) in [(byURL, "https://a.example"), (byDescriptor, "DESC"), (blankURL, "DESC"), (forged, "https://b.example")] {
                    let row = try await owner.query("SELECT site, site = coalesce(site_url, descriptor) AS rule FROM flexcharge.outbox WHERE id = $1", [id]).first!
                    #expect(try row.decode("site", as: String.self) == site)
                    #expect(try row.decode("rule", as: Bool.self))
                }
                // An ordinary column now: the workers' updates leave it as it is, and it keeps its value.
                let generated = try await owner.query(
                    "SELECT attgenerated::text AS g FROM pg_attribute WHERE attrelid = 'flexcharge.outbox'::regclass AND attname = 'site'").first!
                #expect(try generated.decode("g", as: String.self) == "")
                try await worker.execute("UPDATE flexcharge.outbox SET state = 'skipped', completed_at = now() WHERE id = $1", [byDescriptor])
                let kept = try await owner.query("SELECT site FROM flexcharge.outbox WHERE id = $1", [byDescriptor]).first!
                #expect(try kept.decode("site", as: String.self) == "DESC")

                for (name, session) in [("gateway", gateway), ("worker", worker), ("operator", operatorSession)] {
                    let insert = await #expect(throws: PGError.self, "\(name) inserts site") {
                        try await session.execute(
                            """
                            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, site)
                            VALUES ('transmit', 'm1', 's-5', 'cit', 'website', 'https://a.example', '{"transaction": {"amount": 1}}', 'x')
                            """)
                    }
                    #expect(insert?.sqlState == "42501", "\(name): \(insert?.description ?? "allowed")")
                    let update = await #expect(throws: PGError.self, "\(name) updates site") {
                        try await session.execute("UPDATE flexcharge.outbox SET site = 'x' WHERE id = $1", [byURL])
                    }
                    #expect(update?.sqlState == "42501", "\(name): \(update?.description ?? "allowed")")
                }
                // Not even the owner can change it after insert (outbox_immutable), to any value.
                for value in ["https://other.example", "DESC"] {
                    let error = await #expect(throws: PGError.self) {
                        try await owner.execute("UPDATE flexcharge.outbox SET site = $2 WHERE id = $1", [byURL, value])
                    }
                    #expect(error?.sqlState == "23514")
                }
                let unchanged = try await owner.query("SELECT site FROM flexcharge.outbox WHERE id = $1", [byURL]).first!
                #expect(try unchanged.decode("site", as: String.self) == "https://a.example")
            } catch {
                await logins.drop(groups)
                throw error
            }
            await logins.drop(groups)
        }
    }
}
