import Foundation
@testable import LibPQ
import Testing
import TestSupport

/// Columns are decoded from libpq's bytes (`decode(pgBytes:)`): every type reads the same value from them as
/// from the same text as a String (`decode(pgText:)`), refusals included; NULL (no bytes) the same as nil text.
@Suite struct ByteDecodingTests {
    static let texts = [
        "0", "7", "-7", "+7", "007", "-0", "", "-", "+", " 1", "1 ", "1a", "12.5", "1e3", "٣",
        "32767", "32768", "-32768", "-32769", "2147483647", "2147483648", "-2147483648", "-2147483649",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "99999999999999999999999", "2026-11-26 13:54:14.123456+00", "2026-11-26 13:54:14+00",
        "2026-11-26 13:54:14.5+05:30", "1999-01-01 00:00:00-08", "2026-11-26", #"\x"#, #"\x00017fFEff"#, #"\x0g"#,
        "t", "f", "true", "héllo", "a\"b\\c",
    ]

    func agrees<T: PGDecodable & Equatable>(_ type: T.Type, _ text: String?) -> Bool {
        guard var text else { return T.decode(pgBytes: nil) == T.decode(pgText: nil) }
        let fromText = T.decode(pgText: text)
        return text.withUTF8 { T.decode(pgBytes: $0) } == fromText
    }

    @Test(arguments: texts.map(Optional.some) + [nil])
    func bytesDecodeAsText(text: String?) {
        #expect(agrees(Int.self, text))
        #expect(agrees(Int64.self, text))
        #expect(agrees(Int32.self, text))
        #expect(agrees(Int16.self, text))
        #expect(agrees(Int?.self, text))
        #expect(agrees(Int16?.self, text))
        #expect(agrees(String.self, text))
        #expect(agrees(String?.self, text))
        #expect(agrees(Date.self, text))
        #expect(agrees(Date?.self, text))
        #expect(agrees(PGBytes.self, text))
        #expect(agrees(PGBytes?.self, text))
        #expect(agrees(Bool.self, text))
        #expect(agrees(Double.self, text))
    }

    /// Through a real result: the rows read libpq's memory after the statement's call returned, and after
    /// the result value itself is gone.
    @Test func rowsOutliveTheirResult() async throws {
        try await TestDatabase.with { db in
            let session = db.session()
            defer { Task { await session.close() } }
            let rows = try await session.query(
                "SELECT g AS n, 'x' || g AS t, now() AS at, '\\x0102'::bytea AS b, NULL::int AS nothing FROM generate_series(-2, 2) g").rows
            #expect(try rows.map { try $0.decode("n", as: Int.self) } == [-2, -1, 0, 1, 2])
            #expect(try rows.map { try $0.decode(1, as: String.self) } == ["x-2", "x-1", "x0", "x1", "x2"])
            #expect(try rows.allSatisfy { try $0.decode("at", as: Date.self).timeIntervalSinceNow.magnitude < 3600 })
            #expect(try rows[0].decode("b", as: PGBytes.self).bytes == [1, 2])
            #expect(try rows[0].decode("nothing", as: Int?.self) == nil)
            #expect(rows[4].values == ["2", "x2", rows[4].values[2], #"\x0102"#, nil])
            #expect(throws: PGError.self) { try rows[0].decode("nothing", as: Int.self) }
            #expect(throws: PGError.self) { try rows[0].decode("t", as: Int.self) }
        }
    }
}
