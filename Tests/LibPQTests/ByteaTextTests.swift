@testable import LibPQ
import Testing

/// `bytea`'s hex text form, read without a database: valid hex in either case, and everything else refused.
@Suite struct ByteaTextTests {
    @Test func hexTextDecodes() {
        #expect(PGBytes(pgTextValue: #"\x"#)?.bytes == [])
        #expect(PGBytes(pgTextValue: #"\x00017fFEff"#)?.bytes == [0, 1, 0x7F, 0xFE, 0xFF])
        #expect(PGBytes([0, 1, 0x7F, 0xFE, 0xFF]).pgTextValue == #"\x00017ffeff"#)
    }

    @Test(arguments: ["", "x", #"\"#, #"x00"#, #"\x0"#, #"\x0g"#, #"\xzz00"#, #"\\x00"#, #"\x00 "#])
    func otherTextIsRefused(text: String) {
        #expect(PGBytes(pgTextValue: text) == nil)
    }
}
