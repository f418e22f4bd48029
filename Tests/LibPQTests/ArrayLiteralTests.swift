import Foundation
@testable import LibPQ
import Testing

/// Array parameters' literal text is the same whether the element type has a specialized path (the worker's
/// batched writes: String, String?, Int64, Int, Int?, Double, Date, Date?) or takes the generic one.
@Suite struct ArrayLiteralTests {
    /// The literal built element by element from each element's own text (for values without `"` or `\`).
    private func expected<T: PGEncodable>(_ values: [T]) -> String {
        "{" + values.map { $0.pgText.map { "\"\($0)\"" } ?? "NULL" }.joined(separator: ",") + "}"
    }

    @Test func specializedElementTypesWriteTheSameLiteral() {
        let date = Date(timeIntervalSince1970: 1_764_633_600.25)
        #expect([String]().pgText == "{}")
        #expect(["a", "b\"c", "d\\e"].pgText == #"{"a","b\"c","d\\e"}"#)
        #expect((["x", nil] as [String?]).pgText == #"{"x",NULL}"#)
        #expect(([1, -2, Int64.max] as [Int64]).pgText == expected([1, -2, Int64.max] as [Int64]))
        #expect(([3, 0] as [Int]).pgText == #"{"3","0"}"#)
        #expect(([nil, 4] as [Int?]).pgText == #"{NULL,"4"}"#)
        #expect(([1.5, -0.25] as [Double]).pgText == expected([1.5, -0.25] as [Double]))
        #expect([date, date].pgText == expected([date, date]))
        #expect(([nil, date] as [Date?]).pgText == expected([nil, date] as [Date?]))
        // Any other element type: the generic path, same syntax.
        #expect(([true, false] as [Bool]).pgText == expected([true, false] as [Bool]))
        #expect(([[1, 2]] as [[Int]]).pgText == #"{"{\"1\",\"2\"}"}"#)
    }
}
