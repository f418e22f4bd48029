@testable import FlexChargeAPI
import Foundation
import NIOHTTP1
import Testing

/// FlexCharge binds keys case-insensitively and its documents mix cases: an answer's keys are matched with
/// their first letter lower-cased. Answers whose keys are all camelCase take a faster decoder; both paths
/// must read the same fields.
@Suite struct ResponseKeyCaseTests {
    private func evaluate(_ json: String) throws -> EvaluateResponse {
        let reply = HTTPExchange.Reply(status: 200, headers: [:], body: Array(json.utf8), latency: .zero)
        let answer: FlexChargeResponse<EvaluateResponse> = try FlexChargeClient.decode(reply, route: "POST /evaluate", renewedToken: false)
        return answer.body
    }

    @Test func camelCaseAndPascalCaseKeysReadTheSameFields() throws {
        let camel = try evaluate(#"{"orderSessionKey": "k-1", "status": "APPROVED", "result": "Success"}"#)
        let pascal = try evaluate(#"{"OrderSessionKey": "k-1", "Status": "APPROVED", "result": "Success"}"#)
        let spaced = try evaluate(#"{ "orderSessionKey" : "k-1" ,"Status"\#t:"APPROVED"}"#)
        #expect(camel.orderSessionKey == "k-1" && camel.status == "APPROVED")
        #expect(pascal.orderSessionKey == "k-1" && pascal.status == "APPROVED" && pascal.result == "Success")
        #expect(spaced.orderSessionKey == "k-1" && spaced.status == "APPROVED")
    }

    @Test func onlyAnswersWhoseKeysAllStartLowerCaseSkipTheKeyStrategy() {
        func camel(_ json: String) -> Bool { FlexChargeJSON.keysAreCamelCase(Array(json.utf8)) }
        #expect(camel(#"{"transmitId": "ABC", "success": true, "errors": ["Bad \"Key\": x"], "customProperties": {}}"#))
        #expect(camel(#"{"a": {"b": [{"c": "D"}]}}"#))
        #expect(!camel(#"{"a": {"B": 1}}"#))  // a nested PascalCase key
        #expect(!camel(#"{"a": "x", "Status" : "APPROVED"}"#))  // space before the colon
        #expect(!camel(#"{"\u0053tatus": "APPROVED"}"#))  // an escape first: not judged, the strategy decides
        #expect(!camel(#"{"": 1}"#))
        #expect(!camel(#"{"_id": 1}"#))
        #expect(!camel(#"{"a": "unterminated"#))
    }

    @Test func firstLetterLowerCasedAsBefore() {
        #expect(FlexChargeJSON.camelCase("OrderSessionKey") == "orderSessionKey")
        #expect(FlexChargeJSON.camelCase("status") == "status")
        #expect(FlexChargeJSON.camelCase("_id") == "_id")
        #expect(FlexChargeJSON.camelCase("") == "")
        #expect(FlexChargeJSON.camelCase("Éclair") == "éclair")
    }
}
