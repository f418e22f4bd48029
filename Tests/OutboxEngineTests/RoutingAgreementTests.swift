import Foundation
import LibPQ
import Testing
import TestSupport

/// Routing has one home, `flexcharge.route_by_switches()` (migrations/0014): `route()` (the
/// tokenizer, the operator) and `claim()` (the worker) must resolve every event alike, and as the
/// rule below says.
@Suite struct RoutingAgreementTests {
    static let switches = ["off", "sandbox", "production"]
    /// The three switch columns, in this order everywhere below.
    static let columns = ["mit", "cit_website", "cit_call_center"]
    /// (channel, origin) of the three channels.
    static let channels: [(String, String?)] = [("mit", nil), ("cit", "website"), ("cit", "call_center")]

    /// The rule as migrations/0014 states it, written out independently for the check.
    static func expected(enrolled: Bool, isTest: Bool, channel: String, origin: String?,
                         merchant: [String], site: [String?]?) -> String {
        guard enrolled else { return "off" }
        if isTest { return "sandbox" }
        let column = channel == "mit" ? 0 : origin == "call_center" ? 2 : 1
        return site?[column] ?? merchant[column]
    }

    @Test func routeAndClaimResolveEveryCombinationAlike() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }

            // Every merchant switch combination (27 merchants), each with every site override
            // combination (a row with NULL or a value per column: 64 sites) and a site without a row.
            var merchants: [String: [String]] = [:]
            for mit in Self.switches { for web in Self.switches { for call in Self.switches {
                merchants["m-\(mit)-\(web)-\(call)"] = [mit, web, call]
            } } }
            let overrides: [String?] = [nil] + Self.switches
            var sites: [String: [String?]] = [:]
            for mit in overrides { for web in overrides { for call in overrides {
                sites["s-\(mit ?? "null")-\(web ?? "null")-\(call ?? "null")"] = [mit, web, call]
            } } }
            let merchantIDs = merchants.keys.sorted()
            try await session.execute(
                """
                INSERT INTO flexcharge.merchants (merchant_id, mit, cit_website, cit_call_center)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                """, [merchantIDs, merchantIDs.map { merchants[$0]![0] }, merchantIDs.map { merchants[$0]![1] },
                      merchantIDs.map { merchants[$0]![2] }])
            let siteNames = sites.keys.sorted()
            try await session.execute(
                """
                INSERT INTO flexcharge.merchant_sites (merchant_id, site, mit, cit_website, cit_call_center)
                SELECT m.merchant_id, s.site, s.mit, s.cit_website, s.cit_call_center
                  FROM flexcharge.merchants m,
                       unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS s(site, mit, cit_website, cit_call_center)
                """, [siteNames, siteNames.map { sites[$0]![0] }, siteNames.map { sites[$0]![1] }, siteNames.map { sites[$0]![2] }])

            // One event per merchant (and an unknown one) x site (and one without a row) x channel x test flag.
            let allMerchants = merchantIDs + ["m-unknown"]
            let allSites = siteNames + ["no-override-row"]
            try await session.execute(
                """
                INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload, is_test)
                SELECT 'evaluate', m, m || '/' || s || '/' || c.channel || '/' || coalesce(c.origin, '-') || '/' || t,
                       c.channel, c.origin, s, '{"transaction": {"amount": 1500}}', t
                  FROM unnest($1::text[]) m, unnest($2::text[]) s,
                       (VALUES ('mit', NULL), ('cit', 'website'), ('cit', 'call_center')) c(channel, origin),
                       unnest(ARRAY[false, true]) t
                """, [allMerchants, allSites])

            // What route() says for each event, before any claim.
            var routed: [Int64: String] = [:]
            for row in try await session.query(
                "SELECT id, flexcharge.route(merchant_id, site, channel, origin, is_test) AS environment FROM flexcharge.outbox").rows {
                routed[try row.decode("id")] = try row.decode("environment")
            }
            // 0002's route() without the flag is the same rule for live traffic.
            let liveDisagreements = try await session.query(
                """
                SELECT count(*) AS n FROM flexcharge.outbox
                 WHERE NOT is_test AND flexcharge.route(merchant_id, site, channel, origin)
                                       IS DISTINCT FROM flexcharge.route(merchant_id, site, channel, origin, false)
                """).first!.decode("n", as: Int.self)
            #expect(liveDisagreements == 0)

            // Claim everything: routed events run, 'off' ones are skipped.
            while try await session.query(
                "SELECT count(*) AS n FROM flexcharge.claim('w', 20000, ARRAY[20000, 20000, 20000, 20000], interval '1 hour')"
            ).first!.decode("n", as: Int.self) > 0 {}

            let rows = try await session.query(
                """
                SELECT id, merchant_id, site, channel, origin, is_test, state,
                       CASE WHEN state = 'skipped' THEN 'off' ELSE environment END AS claimed
                  FROM flexcharge.outbox
                """).rows
            #expect(rows.count == allMerchants.count * allSites.count * Self.channels.count * 2)
            var seen: [String: Int] = [:]
            var mismatches: [String] = []
            for row in rows {
                let id: Int64 = try row.decode("id")
                let merchantID: String = try row.decode("merchant_id")
                let site: String = try row.decode("site")
                let channel: String = try row.decode("channel")
                let origin: String? = try row.decode("origin")
                let isTest: Bool = try row.decode("is_test")
                let state: String = try row.decode("state")
                let claimed: String? = try row.decode("claimed")
                let want = Self.expected(enrolled: merchants[merchantID] != nil, isTest: isTest, channel: channel, origin: origin,
                                         merchant: merchants[merchantID] ?? ["off", "off", "off"], site: sites[site])
                seen["\(isTest ? "test" : "live") \(want)", default: 0] += 1
                #expect(state == (want == "off" ? "skipped" : "running"))
                if routed[id] != want || claimed != want {
                    mismatches.append("\(merchantID) \(site) \(channel)/\(origin ?? "-") test=\(isTest): rule \(want), route() \(routed[id] ?? "nil"), claim() \(claimed ?? "nil")")
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) disagreements, e.g. \(mismatches.prefix(5))")
            // Every outcome occurs, for live and for test traffic (test: sandbox, or off when unknown).
            for outcome in ["live off", "live sandbox", "live production", "test sandbox", "test off"] {
                #expect(seen[outcome, default: 0] > 0, "no event resolved to \(outcome)")
            }
            #expect(seen["test production"] == nil)
        }
    }

    /// claim() stays one query per lane: the rule is inlined into it as an expression, not called
    /// per row (EXPLAIN of the same join shows the CASE, not the function).
    @Test func theRuleIsInlinedWhereClaimUsesIt() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let plan = try await session.query(
                """
                EXPLAIN (VERBOSE, COSTS OFF)
                SELECT o.id, flexcharge.route_by_switches(m.merchant_id IS NOT NULL, o.is_test, o.channel, o.origin,
                                                          m.mit, m.cit_website, m.cit_call_center,
                                                          s.mit, s.cit_website, s.cit_call_center)
                  FROM flexcharge.outbox o
                  LEFT JOIN flexcharge.merchants m ON m.merchant_id = o.merchant_id
                  LEFT JOIN flexcharge.merchant_sites s ON s.merchant_id = o.merchant_id AND s.site = o.site
                """).rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
            #expect(plan.contains("CASE"))
            #expect(!plan.contains("route_by_switches"))
            #expect(!plan.contains("SubPlan"))
        }
    }
}
