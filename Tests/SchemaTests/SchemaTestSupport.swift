import Foundation
import LibPQ
import TestSupport

/// Inserts one event with the given contract columns (nil = NULL); returns its id.
@discardableResult
func insertEvent(
    on session: PGSession, kind: String = "evaluate", merchantID: String = "m1", orderID: String = "o1",
    channel: String = "cit", origin: String? = "website", siteURL: String? = "https://shop.example",
    descriptor: String? = nil, payload: String = #"{"transaction": {"amount": 1500}}"#, idempotencyKey: String? = nil
) async throws -> Int64 {
    try await session.query(
        """
        INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload, idempotency_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) RETURNING id
        """,
        [kind, merchantID, orderID, channel, origin, siteURL, descriptor, payload, idempotencyKey]
    ).first!.decode("id")
}

/// True when a text holds a run of four or more digits (an error must never echo a card number).
func holdsDigitRun(_ text: String) -> Bool {
    text.range(of: "[0-9]{4}", options: .regularExpression) != nil
}

/// Login roles made for one test, members of the flexcharge group roles. Roles are cluster-wide:
/// names carry a random suffix, and `drop()` removes them.
struct TestLogins: Sendable {
    let suffix = UUID().uuidString.prefix(8).lowercased()
    let password = UUID().uuidString
    let adminURL: String
    let databaseURL: String

    init(database: TestDatabase) async throws {
        adminURL = try await TestServerURL.adminURL()
        databaseURL = database.url
    }

    func name(_ group: String) -> String { "fc_t_\(group)_\(suffix)" }

    /// Creates a login role in `flexcharge_<group>` (gateway, worker, operator).
    func create(_ group: String) async throws {
        let admin = PGSession(configuration: PGConfiguration(url: adminURL), name: "test-roles")
        defer { Task { await admin.close() } }
        // DDL takes no parameters: the name is quoted, the password is a UUID.
        try await admin.execute(
            "CREATE ROLE \(quotedIdentifier(name(group))) LOGIN PASSWORD '\(password)' IN ROLE \(quotedIdentifier("flexcharge_\(group)"))")
    }

    /// A session on the test database logged in as the group's login role.
    func session(_ group: String) -> PGSession {
        PGSession(configuration: PGConfiguration(url: url(user: name(group))), name: "as-\(group)")
    }

    func url(user: String) -> String {
        if var components = URLComponents(string: databaseURL), databaseURL.contains("://") {
            components.user = user
            components.password = password
            return components.string ?? databaseURL
        }
        return databaseURL + " user=\(user) password=\(password)"
    }

    func drop(_ groups: [String]) async {
        let admin = PGSession(configuration: PGConfiguration(url: adminURL), name: "test-roles")
        for group in groups { _ = try? await admin.execute("DROP ROLE IF EXISTS \(quotedIdentifier(name(group)))") }
        await admin.close()
    }
}
