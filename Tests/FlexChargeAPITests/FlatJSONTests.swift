@testable import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// ``FlatJSON``, the transmit answer's fast path, never answers differently from `JSONDecoder`: whenever it
/// answers, the value is JSONDecoder's; it answers for FlexCharge's usual answer.
@Suite struct FlatJSONTests {
    static let usual = #"{"success":true,"result":"success","status":null,"statusCode":null,"errors":[],"customProperties":{},"transmitId":"0b7e1a44-2f0c-4c55-9a43-5f3c8d1e0a11"}"#

    private func decoded(_ bytes: [UInt8]) -> TransmitResponse? {
        try? FlexChargeJSON.decoder(for: bytes).decode(TransmitResponse.self, from: Data(bytes))
    }

    @Test func readsTheUsualAnswerAsJSONDecoderDoes() throws {
        let bytes = Array(Self.usual.utf8)
        let flat = try #require(TransmitResponse(flatJSON: bytes))
        #expect(flat == TransmitResponse(transmitId: "0b7e1a44-2f0c-4c55-9a43-5f3c8d1e0a11", result: "success", success: true))
        #expect(flat == decoded(bytes))
    }

    @Test(arguments: [
        "{}", " { } ", #"{"success":false}"#, #"{"transmitId":null,"result":null}"#,
        #"{"errors":[{"code":"x","detail":"a \"quoted\" \u00e9 \/ \n"}],"n":-0.5e+10,"deep":[[[{}]]],"success":true}"#,
    ])
    func answersTheSameAsJSONDecoder(json: String) throws {
        let bytes = Array(json.utf8)
        let flat = try #require(TransmitResponse(flatJSON: bytes), "the fast path should answer for \(json)")
        #expect(flat == decoded(bytes))
    }

    @Test(arguments: [
        #"{"TransmitId":"a"}"#,  // PascalCase: JSONDecoder's key mapping decides
        #"{"transmitId":"a\u0062"}"#,  // an escape in a wanted value
        #"{"transmitId":"a","transmitId":"b"}"#,  // twice
        #"{"success":"yes"}"#, #"{"transmitId":5}"#,  // wrong kind: JSONDecoder's error
        #"{"a":01}"#, #"{"a":1.}"#, #"{"a":[1,]}"#, #"{"a":"\x"}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{1}\"}",
        #"{"a":1} x"#, #"[]"#, "", #"{"a":tru}"#, #"{"é":1}"#,
    ])
    func leavesEverythingElseToJSONDecoder(json: String) {
        #expect(TransmitResponse(flatJSON: Array(json.utf8)) == nil)
    }

    /// Random mutations of the usual answer: whenever the fast path answers, JSONDecoder agrees.
    @Test func mutationsNeverDisagree() {
        var rng = SeededGenerator(seed: 0x5EED_F1A7)
        let alphabet = Array(#"{}[]":,\ "0123456789-+.eEtrufalsn u aA\#n"#.utf8) + [0x00, 0x1F, 0xC3, 0xA9]
        var answered = 0
        for _ in 0..<20_000 {
            var bytes = Array(Self.usual.utf8)
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let position = Int(rng.next() % UInt64(bytes.count + 1))
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0: bytes.insert(byte, at: position)
                case 1: if position < bytes.count { bytes.remove(at: position) }
                default: if position < bytes.count { bytes[position] = byte }
                }
            }
            guard let flat = TransmitResponse(flatJSON: bytes) else { continue }
            answered += 1
            let reference = decoded(bytes)
            #expect(flat == reference, "\(String(decoding: bytes, as: UTF8.self))")
            if flat != reference { return }
        }
        #expect(answered > 1_000, "the fast path should answer for many harmless mutations")
    }
}
