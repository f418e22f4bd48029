import Foundation
import LibPQ
import Testing
import TestSupport

/// `flexcharge-outbox status` shows the circuit breakers (migrations/0013) and alerts on an open one.
@Suite struct BreakerStatusTests {
    @Test func statusShowsOpenBreakersAndAlerts() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let env = ["DATABASE_URL": db.url]
            try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website) VALUES ('down-shop', 'sandbox'), ('up-shop', 'sandbox')")
            for order in ["a", "b"] {
                try await session.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    VALUES ('transmit', 'down-shop', $1, 'cit', 'website', 'https://down.example', '{"transaction": {"amount": 100}}')
                    """, [order])
            }
            try await session.execute(
                """
                INSERT INTO flexcharge.circuit_breakers (merchant_id, environment, state, failures, trips, opened_at, retry_at, last_error)
                VALUES ('down-shop', 'sandbox', 'open', 5, 3, now() - interval '10 minutes', now() + interval '20 seconds', 'send: HTTP 503: Service Unavailable'),
                       ('up-shop', 'sandbox', 'closed', 0, 1, NULL, NULL, NULL)
                """)

            let json = try await runCLI(["status", "--json", "--alert-oldest-seconds", "100000"], environment: env)
            #expect(json.status == 3, "\(json.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
            #expect((report["breakerCounts"] as? [String: Int]) == ["closed": 1, "open": 1, "half_open": 0])
            let breakers = report["breakers"] as? [[String: Any]] ?? []
            #expect(breakers.count == 1)
            #expect(breakers.first?["merchantId"] as? String == "down-shop")
            #expect(breakers.first?["state"] as? String == "open")
            #expect(breakers.first?["pendingEvents"] as? Int == 2)
            #expect(breakers.first?["trips"] as? Int == 3)
            #expect((report["alerts"] as? [String]) == [
                "circuit breaker open for merchant down-shop (sandbox): FlexCharge is failing; 2 event(s) wait without spending attempts"
            ])

            let human = try await runCLI(["status", "--alert-oldest-seconds", "100000"], environment: env)
            #expect(human.status == 3)
            #expect(human.stdout.contains("circuit breakers: closed 1  open 1  half_open 0"))
            #expect(human.stdout.contains("down-shop") && human.stdout.contains("next_probe"))
            #expect(!human.stdout.contains("up-shop"))

            // The breaker closed again: healthy, nothing listed.
            try await session.execute("UPDATE flexcharge.circuit_breakers SET state = 'closed', failures = 0, retry_at = NULL")
            let healthy = try await runCLI(["status", "--alert-oldest-seconds", "100000"], environment: env)
            #expect(healthy.status == 0, "\(healthy.stdout)")
            #expect(healthy.stdout.contains("circuit breakers: closed 2  open 0  half_open 0"))
            await session.close()
        }
    }
}
