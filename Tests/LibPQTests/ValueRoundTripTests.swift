import Foundation
@testable import LibPQ
import Testing
import TestSupport

/// Every type the schema uses goes to the server as a parameter and comes back equal.
@Suite struct ValueRoundTripTests {
    @Test func scalarsRoundTripThroughTheServer() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let uuid = UUID()
            let date = Date(timeIntervalSince1970: 1_795_000_000.123456)
            let row = try await session.query(
                """
                SELECT $1::text AS t, $2::integer AS i, $3::bigint AS b, $4::boolean AS flag,
                       $5::numeric(12,2) AS money, $6::timestamptz AS at, $7::uuid AS id,
                       $8::jsonb AS doc, $9::bytea AS raw, $10::float8 AS ratio
                """,
                ["héllo, wörld ✓ \"quoted\" \\ back", Int32(-42), Int64.max, true, Cents(-123_456), date, uuid,
                 PGJSON(text: #"{"a": [1, "ü", null]}"#), PGBytes([0, 1, 2, 254, 255]), 0.1]
            ).first!
            #expect(try row.decode("t", as: String.self) == "héllo, wörld ✓ \"quoted\" \\ back")
            #expect(try row.decode("i", as: Int32.self) == -42)
            #expect(try row.decode("b", as: Int64.self) == Int64.max)
            #expect(try row.decode("flag", as: Bool.self) == true)
            #expect(try row.decode("money", as: Cents.self) == Cents(-123_456))
            #expect(try row.decode("at", as: Date.self).timeIntervalSince1970 == date.timeIntervalSince1970)
            #expect(try row.decode("id", as: UUID.self) == uuid)
            let doc = try row.decode("doc", as: PGJSON.self)
            #expect(try JSONSerialization.jsonObject(with: Data(doc.text.utf8)) as? [String: [Any?]] != nil)
            #expect(doc.text.contains("ü"))
            #expect(try row.decode("raw", as: PGBytes.self) == PGBytes([0, 1, 2, 254, 255]))
            #expect(try row.decode("ratio", as: Double.self) == 0.1)
        }
    }

    @Test func nullsDecodeOnlyIntoOptionals() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let nothing: String? = nil
            let row = try await session.query(
                "SELECT $1::text AS t, $2::bigint AS b, $3::uuid AS u, $4::jsonb AS j",
                [nothing, Int64?.none, UUID?.none, PGJSON?.none]
            ).first!
            #expect(try row.decode("t", as: String?.self) == nil)
            #expect(try row.decode("b", as: Int64?.self) == nil)
            #expect(try row.decode("u", as: UUID?.self) == nil)
            #expect(try row.decode("j", as: PGJSON?.self) == nil)
            #expect(throws: PGError.self) { try row.decode("t", as: String.self) }
        }
    }

    @Test func arraysRoundTripWithQuotingAndNulls() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let texts: [String?] = ["plain", "with,comma", "with \"quote\"", "back\\slash", "{braces}", nil, "", "日本"]
            let ids: [Int64] = [1, -2, 9_007_199_254_740_993]
            let uuids = [UUID(), UUID()]
            let row = try await session.query(
                "SELECT $1::text[] AS texts, $2::bigint[] AS ids, $3::uuid[] AS uuids, '{}'::int[] AS empty, cardinality($1::text[]) AS n",
                [texts, ids, uuids]
            ).first!
            #expect(try row.decode("texts", as: [String?].self) == texts)
            #expect(try row.decode("ids", as: [Int64].self) == ids)
            #expect(try row.decode("uuids", as: [UUID].self) == uuids)
            #expect(try row.decode("empty", as: [Int].self) == [])
            #expect(try row.decode("n", as: Int.self) == texts.count)
        }
    }

    @Test func largeJSONBRoundTrips() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let items = (0..<20_000).map { #"{"sku":"item-\#($0)","name":"Ünïcödé \#($0)"}"# }
            let text = "[" + items.joined(separator: ",") + "]"
            let row = try await session.query(
                "SELECT $1::jsonb AS doc, jsonb_array_length($1::jsonb) AS n, octet_length($1::text) AS bytes", [PGJSON(text: text)]
            ).first!
            #expect(try row.decode("n", as: Int.self) == 20_000)
            #expect(try row.decode("bytes", as: Int.self) > 700_000)
            let back = try row.decode("doc", as: PGJSON.self)
            let decoded = try JSONSerialization.jsonObject(with: Data(back.text.utf8)) as! [[String: String]]
            #expect(decoded.count == 20_000)
            #expect(decoded[19_999]["name"] == "Ünïcödé 19999")
        }
    }

    @Test func centsParseExactlyAndRefuseFractionsOfACent() {
        #expect(Cents.decode(pgText: "12.34") == Cents(1234))
        #expect(Cents.decode(pgText: "-0.05") == Cents(-5))
        #expect(Cents.decode(pgText: "7") == Cents(700))
        #expect(Cents.decode(pgText: "7.5") == Cents(750))
        #expect(Cents.decode(pgText: "7.500") == Cents(750))
        #expect(Cents.decode(pgText: "0.001") == nil)
        #expect(Cents(1999).decimalText == "19.99")
        #expect(Cents(-7).decimalText == "-0.07")
    }
}
