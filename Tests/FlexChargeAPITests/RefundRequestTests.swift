import FlexChargeAPI
import Foundation
import Testing

/// The client's refund body: exact decimal dollars (no binary floating point), the message as a JSON string.
@Suite struct RefundRequestTests {
    @Test(arguments: [(1234, "12.34"), (1200, "12"), (5, "0.05"), (199_999_999_999, "1999999999.99"), (1, "0.01")])
    func centsAreSentAsExactDollars(cents: Int, dollars: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(RefundRequest(amountCents: cents)), as: UTF8.self)
        #expect(text == #"{"amountToRefund":\#(dollars)}"#)
    }

    @Test func theMessageIsAJSONString() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(RefundRequest(amountCents: 250, message: #"Customer "request""#))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["refundMessage"] as? String == #"Customer "request""#)
        #expect((object["amountToRefund"] as? NSNumber)?.decimalValue == Decimal(string: "2.5"))
    }
}
