import Foundation
import LibPQ
import Testing
import TestSupport
@testable import OutboxEngine

/// Lanes have one home, the Swift enum `Lane`; SQL mirrors it (`flexcharge.lane_of`, the table
/// `flexcharge.lanes`, migrations/0014). Both must agree for every kind and channel.
@Suite struct LaneTests {
    static func payload(_ kind: ClaimedEvent.Kind) -> String {
        switch kind {
        case .transmit, .evaluate: #"{"transaction": {"amount": 1500, "currency": "USD"}}"#
        case .refund: #"{"amountCents": 500}"#
        case .capture: #"{"amountCents": 500, "currency": "USD"}"#
        case .cancel, .externalCancel: "{}"
        }
    }

    @Test func swiftAndSQLAgreeOnEveryKindAndChannel() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            // The table holds exactly the enum's lanes.
            let table = try await session.query("SELECT lane, name FROM flexcharge.lanes ORDER BY lane").rows.map {
                (try $0.decode("lane", as: Int.self), try $0.decode("name", as: String.self))
            }
            #expect(table.map(\.0) == Lane.allCases.map(\.rawValue))
            #expect(table.map(\.1) == Lane.allCases.map(\.name))

            // Every kind x channel, inserted as the gateway does: the trigger's lane and its name.
            for kind in ClaimedEvent.Kind.allCases {
                for channel in ["cit", "mit"] {
                    let row = try await session.query(
                        """
                        WITH inserted AS (
                            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                            VALUES ($1, 'm1', $1 || '-' || $2, $2, CASE WHEN $2 = 'cit' THEN 'website' END, 's', $3::jsonb)
                            RETURNING lane)
                        SELECT i.lane, l.name, flexcharge.lane_of($1, $2) AS lane_of FROM inserted i JOIN flexcharge.lanes l USING (lane)
                        """, [kind.rawValue, channel, PGJSON(text: Self.payload(kind))]).first
                    let lane = Lane(kind: kind, channel: channel)
                    #expect(try row?.decode("lane", as: Int.self) == lane.rawValue, "\(kind) \(channel)")
                    #expect(try row?.decode("lane_of", as: Int.self) == lane.rawValue, "\(kind) \(channel)")
                    #expect(try row?.decode("name", as: String.self) == lane.name, "\(kind) \(channel)")
                }
            }
            // queue_health names the lanes from the same table.
            let named = try await session.query("SELECT DISTINCT lane, lane_name FROM flexcharge.queue_health ORDER BY lane").rows.map {
                (try $0.decode("lane", as: Int.self), try $0.decode("lane_name", as: String.self))
            }
            #expect(named.map(\.0) == Lane.allCases.map(\.rawValue))
            #expect(named.map(\.1) == Lane.allCases.map(\.name))
        }
    }

    /// The insert NOTIFY (0026) is sent only for the lanes that wake the worker at once, carrying the
    /// lane: an insert of transmits or follow-ups notifies nobody (it used to, and the worker ignored it).
    @Test func theInsertNotifiesOnlyTheLanesThatWakeAtOnce() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            let listener = db.session()
            defer { Task { await session.close(); await listener.close() } }
            try await listener.listen("flexcharge_outbox")
            // The notifications one statement's commit sends, read up to a sentinel sent after it by
            // the same session (a session's notifications arrive in commit order), so "none" is read
            // without waiting for a timeout.
            func payloadsOf(_ kinds: [(ClaimedEvent.Kind, String)]) async throws -> Set<String> {
                try await session.execute(
                    """
                    INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, payload)
                    SELECT k, 'm1', 'n-' || k || '-' || c || '-' || gen_random_uuid(), c, CASE WHEN c = 'cit' THEN 'website' END, 's', p::jsonb
                      FROM unnest($1::text[], $2::text[], $3::text[]) AS e(k, c, p)
                    """, [kinds.map { $0.0.rawValue }, kinds.map { $0.1 }, kinds.map { Self.payload($0.0) }])
                try await session.execute("SELECT pg_notify('flexcharge_outbox', 'sentinel')")
                var payloads: Set<String> = []
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    for notification in try await listener.waitForNotifications(timeoutMilliseconds: 500) {
                        if notification.payload == "sentinel" { return payloads }
                        payloads.insert(notification.payload)
                    }
                }
                Issue.record("the sentinel notification never came")
                return payloads
            }
            let cases: [[(ClaimedEvent.Kind, String)]] = [
                [(.transmit, "cit")], [(.refund, "cit"), (.transmit, "mit")], [(.transmit, "cit"), (.evaluate, "mit")],
                [(.cancel, "mit"), (.evaluate, "cit"), (.evaluate, "mit")], [(.capture, "cit"), (.externalCancel, "mit")],
            ]
            for kinds in cases {
                let payloads = try await payloadsOf(kinds)
                let waking = Set(kinds.map { Lane(kind: $0.0, channel: $0.1) }.filter(\.wakesAtOnce).map { String($0.rawValue) })
                #expect(payloads == waking, "\(kinds)")
                #expect(payloads.allSatisfy(Lane.wakesAtOnce(notifyPayload:)))
            }
        }
    }

    @Test func whichLanesWakeAtOnceAndTakeCITRoom() {
        #expect(Lane.allCases.filter(\.wakesAtOnce) == [.citEvaluate, .mitEvaluate])
        #expect(Lane.allCases.filter(\.usesCITRoom) == [.citEvaluate])
        #expect(Lane.allCases.map(\.rawValue) == Array(0..<Lane.allCases.count))  // claimCaps is indexed by raw value
        #expect(Lane.claimCaps(total: 9, others: 4) == [9, 4, 4, 4])
        #expect(!Lane.wakesAtOnce(notifyPayload: "7") && !Lane.wakesAtOnce(notifyPayload: "") && !Lane.wakesAtOnce(notifyPayload: "x"))
        #expect(Lane.wakesAtOnce(notifyPayload: "0") && Lane.wakesAtOnce(notifyPayload: "1"))
        #expect(!Lane.wakesAtOnce(notifyPayload: "2") && !Lane.wakesAtOnce(notifyPayload: "3"))
    }
}
