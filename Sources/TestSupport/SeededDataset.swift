import LibPQ

/// A hand-made history of events with known outcomes, written as the gateway and the workers
/// would have left it (retries in the attempt ledger, failures, skips, several merchants, sites
/// and channels). `ReportCommandTests` states by hand what the report must say about it; the
/// console's tests compare its pages with the CLI on it.
public enum SeededDataset {
    /// (kind, merchant, order, channel, origin, site_url, descriptor, amount, state, decision, environment, attempts, day)
    public static let events: [(String, String, String, String, String?, String?, String, Int, String, String?, String?, Int, String)] = [
        ("transmit", "m1", "o1", "cit", "website", "a.example", "D1", 1000, "succeeded", nil, "sandbox", 1, "2026-11-20"),
        ("evaluate", "m1", "o1", "cit", "website", "a.example", "D1", 1000, "succeeded", "APPROVED", "sandbox", 3, "2026-11-20"),
        ("evaluate", "m1", "o2", "cit", "website", "a.example", "D1", 1500, "succeeded", "DECLINED", "sandbox", 1, "2026-11-20"),
        ("evaluate", "m1", "o3", "cit", "website", "a.example", "D1", 2000, "awaiting_outcome", "CHALLENGE", "sandbox", 1, "2026-11-20"),
        ("transmit", "m1", "o4", "cit", "call_center", nil, "D1", 700, "skipped", nil, nil, 0, "2026-11-20"),
        ("evaluate", "m1", "o5", "mit", nil, "a.example", "D1", 999, "awaiting_outcome", "SUBMITTED", "production", 1, "2026-11-20"),
        ("evaluate", "m1", "o6", "mit", nil, "a.example", "D1", 2500, "succeeded", "APPROVED", "production", 2, "2026-11-20"),
        ("transmit", "m2", "o7", "cit", "website", "b.example", "D2", 1200, "failed", nil, "sandbox", 1, "2026-11-20"),
        ("evaluate", "m2", "o8", "cit", "website", "b.example", "D2", 1200, "dead", nil, "sandbox", 5, "2026-11-20"),
        ("evaluate", "m2", "o9", "cit", "website", "b.example", "D2", 4200, "succeeded", "APPROVED", "sandbox", 1, "2026-11-21"),
    ]

    /// Inserts the events (as the gateway) and writes their outcomes and attempts (as workers).
    /// Returns the ids in the order of ``events``.
    @discardableResult
    public static func seed(_ session: PGSession) async throws -> [Int64] {
        try await session.execute("INSERT INTO flexcharge.merchants (merchant_id, cit_website, mit) VALUES ('m1', 'sandbox', 'production'), ('m2', 'sandbox', 'off')")
        var ids: [Int64] = []
        for e in events {
            let payload = #"{"transaction": {"amount": \#(e.7), "currency": "USD"}}"#
            let id: Int64 = try await session.query(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING id
                """, [e.0, e.1, e.2, e.3, e.4, e.5, e.6, PGJSON(text: payload)]).first!.decode("id")
            // The insert trigger stamps created_at (the gateway cannot back-date an event); the history
            // is dated here, as the owner.
            try await session.execute(
                """
                UPDATE flexcharge.outbox
                   SET state = $2, decision = $3, environment = $4, attempts = $5,
                       created_at = $6::date + time '10:00' AT TIME ZONE 'UTC',
                       first_claimed_at = CASE WHEN $5 > 0 THEN $6::date + time '10:00' AT TIME ZONE 'UTC' END,
                       completed_at = CASE WHEN $2 IN ('succeeded', 'failed', 'dead', 'skipped')
                                           THEN $6::date + time '10:00' AT TIME ZONE 'UTC' END,
                       last_error = CASE $2 WHEN 'failed' THEN 'refused' WHEN 'dead' THEN 'attempts exhausted' END
                 WHERE id = $1
                """, [id, e.8, e.9, e.10, e.11, e.12])
            // One ledger row per attempt: the last one is the outcome, the earlier ones failed.
            if e.11 > 0 {
                try await session.execute(
                    """
                    INSERT INTO flexcharge.attempts (event_id, attempt, action, worker, environment, started_at, finished_at,
                                                     latency_ms, http_status, failure_class)
                    SELECT $1, n, 'send', 'seed', $2, now(), now(), 12.5, CASE WHEN n < $3 THEN 503 ELSE 200 END,
                           CASE WHEN n < $3 THEN 'retryable' END
                      FROM generate_series(1, $3::int) AS n
                    """, [id, e.10, e.11])
            }
            ids.append(id)
        }
        return ids
    }
}
