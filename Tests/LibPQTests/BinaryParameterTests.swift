import Foundation
@testable import LibPQ
import Testing
import TestSupport

/// ``PGBinaryArray`` parameters reach the server as the values they hold, with the type they name: read
/// back as text they equal what the same array sent as a text literal gives, and element by element they
/// equal the Swift values (NULLs, empty arrays, non-ASCII text, times before 2000 and before 1970 with
/// sub-second parts, float edge values, JSON).
@Suite struct BinaryParameterTests {
    /// The documented wire format, byte for byte (no server needed).
    @Test func writesPostgresArrayWireFormat() {
        let ints = PGBinaryArray(int8: [1, -2]).pgParameter
        #expect(ints.type == 1016)
        #expect(ints.value == .binary(
            [0, 0, 0, 1, /* no NULLs */ 0, 0, 0, 0, /* int8 */ 0, 0, 0, 20, /* length, lower bound */ 0, 0, 0, 2, 0, 0, 0, 1,
             0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
             0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 254]))
        let texts = PGBinaryArray(text: ["é", nil]).pgParameter
        #expect(texts.type == 1009)
        #expect(texts.value == .binary(
            [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0xC3, 0xA9, 255, 255, 255, 255]))
        let empty = PGBinaryArray(jsonb: []).pgParameter
        #expect(empty.type == 3807)
        #expect(empty.value == .binary([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0E, 0xDA]))
        let epoch2000 = PGBinaryArray(timestamptz: [Date(timeIntervalSince1970: 946_684_800.000001)]).pgParameter
        #expect(epoch2000.value == .binary([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 160, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]))
        // Everything else stays text with no type: the statement goes out as it always did.
        #expect(PGParameter(text: "x").isUntypedText && Int64(5).pgParameter == PGParameter(text: "5"))
        #expect((nil as PGBinaryArray?).pgParameter == PGParameter(text: nil))
    }

    @Test func bigintAndIntegerArrays() async throws {
        try await withSession { session in
            try await expectSameAsText(session, PGBinaryArray(int8: [0, 1, -1, .max, .min]), type: "bigint[]",
                                       text: "{0,1,-1,9223372036854775807,-9223372036854775808}")
            try await expectSameAsText(session, PGBinaryArray(int4: [1, nil, Int(Int32.max), Int(Int32.min)]),
                                       type: "integer[]", text: "{1,NULL,2147483647,-2147483648}")
            let row = try await session.query(
                """
                SELECT $2::bigint = ANY($1) AS found, 42::bigint = ANY($1) AS absent, array_lower($1, 1) AS lower,
                       array_length($1, 1) AS length, array_position($3, NULL) AS null_at, ($3)[4] AS last
                """,
                [PGBinaryArray(int8: [7, .min, 9]), Int64.min, PGBinaryArray(int4: [1, 2, nil, -5])]).first!
            #expect(try row.decode("found", as: Bool.self))
            #expect(try !row.decode("absent", as: Bool.self))
            #expect(try row.decode("lower", as: Int.self) == 1)
            #expect(try row.decode("length", as: Int.self) == 3)
            #expect(try row.decode("null_at", as: Int.self) == 3)
            #expect(try row.decode("last", as: Int.self) == -5)
        }
    }

    /// An Int beyond `integer` is refused as it was in text: out of range (22003), not truncated.
    @Test func integerOutOfRangeIsRefusedNotTruncated() async throws {
        try await withSession { session in
            let tooBig = PGBinaryArray(int4: [1, Int(Int32.max) + 1])
            #expect(tooBig.pgParameter == PGParameter(text: #"{"1","2147483648"}"#, type: 1007))
            for values in [[1, Int(Int32.max) + 1], [Int(Int32.min) - 1]] as [[Int?]] {
                await #expect { try await session.query("SELECT $1::integer[] AS a", [PGBinaryArray(int4: values)]) } throws: {
                    ($0 as? PGError)?.sqlState == "22003"
                }
            }
        }
    }

    @Test func float8ArraysKeepEveryBitPattern() async throws {
        let values: [Double] = [0.1, 1.0 / 3, -0.0, 0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                .leastNonzeroMagnitude, .leastNormalMagnitude, .infinity, -.infinity, .nan, 1e-300, 123_456.789]
        try await withSession { session in
            try await expectSameAsText(session, PGBinaryArray(float8: values), type: "double precision[]")
            let result = try await session.query(
                "SELECT x::text AS text, encode(float8send(x), 'hex') AS bits FROM unnest($1) WITH ORDINALITY AS u(x, i) ORDER BY i",
                [PGBinaryArray(float8: values)])
            #expect(result.rows.count == values.count)
            for (row, value) in zip(result.rows, values) {
                let bits = String(value.bitPattern, radix: 16)
                #expect(try row.decode("bits", as: String.self) == String(repeating: "0", count: 16 - bits.count) + bits)
                let back = try row.decode("text", as: Double.self)
                #expect(back.bitPattern == value.bitPattern || (back.isNaN && value.isNaN))
            }
            let found = try await session.query("SELECT $2::float8 = ANY($1) AS found", [PGBinaryArray(float8: values), 1.0 / 3]).first!
            #expect(try found.decode("found", as: Bool.self))
        }
    }

    @Test func textArraysWithNullsQuotesAndNonASCII() async throws {
        let values: [String?] = ["", "NULL", nil, "a,b", "{}", "\"q\"", #"back\slash"#, "héllo ✓ 日本語 🎉", "  spaced  ",
                                 "line\nbreak\ttab"]
        try await withSession { session in
            try await expectSameAsText(session, PGBinaryArray(text: values), type: "text[]")
            let result = try await session.query(
                "SELECT x, octet_length(x) AS bytes FROM unnest($1) WITH ORDINALITY AS u(x, i) ORDER BY i",
                [PGBinaryArray(text: values)])
            #expect(try result.rows.map { try $0.decode("x", as: String?.self) } == values)
            #expect(try result.rows.map { try $0.decode("bytes", as: Int?.self) } == values.map { $0?.utf8.count })
            let row = try await session.query(
                "SELECT $2 = ANY($1) AS found, array_position($1, NULL) AS null_at, array_position($1, 'NULL') AS word_at",
                [PGBinaryArray(text: values), "héllo ✓ 日本語 🎉"]).first!
            #expect(try row.decode("found", as: Bool.self))
            #expect(try row.decode("null_at", as: Int.self) == 3)
            #expect(try row.decode("word_at", as: Int.self) == 2)
        }
    }

    @Test func timestamptzArraysBeforeAfter2000AndSubSecond() async throws {
        let dates: [Date?] = [
            Date(timeIntervalSince1970: 946_684_799.999999),  // 1999-12-31 23:59:59.999999
            Date(timeIntervalSince1970: 946_684_800),  // 2000-01-01, the binary form's zero
            Date(timeIntervalSince1970: 0),
            Date(timeIntervalSince1970: -14_182_939.5),  // 1969-07-20 20:17:40.5
            Date(timeIntervalSince1970: -2_208_988_800 + 0.000001),  // 1900-01-01 00:00:00.000001
            nil,
            Date(timeIntervalSince1970: -62_135_596_800),  // 0001-01-01
            Date(timeIntervalSince1970: 1_795_000_000.123456),
            Date(timeIntervalSince1970: 1_795_000_000.0000015),  // rounds to a microsecond as text does
            Date(timeIntervalSince1970: 253_402_300_799.5),  // 9999-12-31 23:59:59.5
            Date(timeIntervalSince1970: 1e300),  // beyond range: infinity, as in text
            Date(timeIntervalSince1970: -1e300),
        ]
        try await withSession { session in
            try await expectSameAsText(session, PGBinaryArray(timestamptz: dates), type: "timestamp with time zone[]")
            let result = try await session.query(
                "SELECT x, x::text AS text FROM unnest($1) WITH ORDINALITY AS u(x, i) ORDER BY i",
                [PGBinaryArray(timestamptz: dates)])
            let texts = try result.rows.map { try $0.decode("text", as: String?.self) }
            #expect(texts[0] == "1999-12-31 23:59:59.999999+00")
            #expect(texts[1] == "2000-01-01 00:00:00+00")
            #expect(texts[3] == "1969-07-20 20:17:40.5+00")
            #expect(texts[4] == "1900-01-01 00:00:00.000001+00")
            #expect(texts[5] == nil)
            #expect(texts[8] == "2026-11-18 11:06:40.000002+00")
            #expect(texts[9] == "9999-12-31 23:59:59.5+00")
            #expect(texts[10] == "infinity" && texts[11] == "-infinity")
            for (row, date) in zip(result.rows, dates).prefix(10) {
                let back = try row.decode("x", as: Date?.self)
                let micros = date.map { ($0.timeIntervalSince1970 * 1_000_000).rounded() }
                #expect(back.map { ($0.timeIntervalSince1970 * 1_000_000).rounded() } == micros)
            }
            let row = try await session.query(
                "SELECT '1969-07-20 20:17:40.5+00'::timestamptz = ANY($1) AS found, array_position($1, NULL) AS null_at",
                [PGBinaryArray(timestamptz: dates)]).first!
            #expect(try row.decode("found", as: Bool.self))
            #expect(try row.decode("null_at", as: Int.self) == 6)
        }
    }

    @Test func jsonbArrays() async throws {
        let documents: [String?] = [#"{"a": [1, "ü", null], "b": {"c": "\"q\""}}"#, "null", nil, "[]", #""日本""#, "1.50"]
        try await withSession { session in
            try await expectSameAsText(session, PGBinaryArray(jsonb: documents), type: "jsonb[]")
            let row = try await session.query(
                """
                SELECT ($1)[1] -> 'a' ->> 1 AS second, jsonb_typeof(($1)[2]) AS json_null, ($1)[3] IS NULL AS sql_null,
                       ($1)[5] #>> '{}' AS word, ($1)[1] = $2::jsonb AS same
                """,
                [PGBinaryArray(jsonb: documents), #"{"b": {"c": "\"q\""}, "a": [1, "ü", null]}"#]).first!
            #expect(try row.decode("second", as: String.self) == "ü")
            #expect(try row.decode("json_null", as: String.self) == "null")
            #expect(try row.decode("sql_null", as: Bool.self))
            #expect(try row.decode("word", as: String.self) == "日本")
            #expect(try row.decode("same", as: Bool.self))
            // Not JSON: refused as `$1::jsonb` refuses it.
            await #expect { try await session.query("SELECT $1::jsonb[] AS a", [PGBinaryArray(jsonb: ["{nope"])]) } throws: {
                ($0 as? PGError)?.sqlState == "22P02"
            }
        }
    }

    @Test func emptyArraysAndNullArrays() async throws {
        let empties: [(PGBinaryArray, String)] = [
            (PGBinaryArray(int8: []), "bigint[]"), (PGBinaryArray(int4: []), "integer[]"),
            (PGBinaryArray(float8: []), "double precision[]"), (PGBinaryArray(text: []), "text[]"),
            (PGBinaryArray(timestamptz: []), "timestamp with time zone[]"), (PGBinaryArray(jsonb: []), "jsonb[]"),
        ]
        try await withSession { session in
            for (empty, type) in empties {
                try await expectSameAsText(session, empty, type: type, text: "{}")
                let row = try await session.query(
                    "SELECT cardinality($1) AS n, array_ndims($1) IS NULL AS no_dimensions, (SELECT count(*) FROM unnest($1)) AS rows",
                    [empty]).first!
                #expect(try row.decode("n", as: Int.self) == 0)
                #expect(try row.decode("no_dimensions", as: Bool.self))
                #expect(try row.decode("rows", as: Int.self) == 0)
            }
            // A whole array that is NULL (the outcome writer's all-NULL columns): one NULL, beside binary ones.
            let row = try await session.query(
                "SELECT $1::text[] IS NULL AS null_array, cardinality($2) AS n, $3::boolean AS flag",
                [nil as PGBinaryArray?, PGBinaryArray(int8: [1, 2]), true]).first!
            #expect(try row.decode("null_array", as: Bool.self))
            #expect(try row.decode("n", as: Int.self) == 2)
            #expect(try row.decode("flag", as: Bool.self))
        }
    }

    // MARK: helpers

    private func withSession(_ body: (PGSession) async throws -> Void) async throws {
        try await TestDatabase.withEmpty { db in
            let session = db.session()
            do {
                try await body(session)
            } catch {
                await session.close()
                throw error
            }
            await session.close()
        }
    }

    /// The binary array, sent with no cast in the SQL, has the type it names, and reads back as text the
    /// same as its text literal sent with a cast (and as `text` when given).
    private func expectSameAsText(
        _ session: PGSession, _ array: PGBinaryArray, type: String, text expected: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        #expect(array.pgParameter.isUntypedText == false, sourceLocation: sourceLocation)
        let row = try await session.query(
            "SELECT pg_typeof($1)::text AS type, $1::text AS binary, $2::\(type)::text AS literal, $1 = $2::\(type) AS equal",
            [array, array.pgText]).first!
        let binary = try row.decode("binary", as: String.self)
        #expect(try row.decode("type", as: String.self) == type, sourceLocation: sourceLocation)
        #expect(binary == (try row.decode("literal", as: String.self)), sourceLocation: sourceLocation)
        if let expected { #expect(binary == expected, sourceLocation: sourceLocation) }
        #expect(try row.decode("equal", as: Bool?.self) ?? true, sourceLocation: sourceLocation)  // NULL with NULL elements
    }
}
