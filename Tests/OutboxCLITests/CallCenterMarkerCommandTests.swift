import Foundation
import LibPQ
import Testing
import TestSupport

/// `merchant set --call-center-order-source / --call-center-card-not-present`: the call-center marker
/// FlexCharge receives on call-center CIT events (migrations/0015_what_is_sent.sql), shown and audited.
@Suite struct CallCenterMarkerCommandTests {
    func cli(_ db: TestDatabase, _ arguments: [String]) async throws -> ProcessResult {
        try await runCLI(arguments, environment: ["DATABASE_URL": db.url])
    }

    @Test func theMarkerIsSetShownAndAudited() async throws {
        try await TestDatabase.with { db in
            #expect(try await cli(db, ["merchant", "add", "shoes", "--cit-call-center", "sandbox", "--actor", "bob"]).status == 0)
            let fresh = try await cli(db, ["merchant", "show", "shoes"])
            #expect(fresh.stdout.contains("call center marker: orderSource call_center, cardNotPresent true"), "\(fresh.stdout)")

            let set = try await cli(db, ["merchant", "set", "shoes", "--call-center-order-source", "moto",
                                         "--call-center-card-not-present", "false", "--actor", "bob"])
            #expect(set.status == 0, "\(set.stderr)")
            let shown = try await cli(db, ["merchant", "show", "shoes"])
            #expect(shown.stdout.contains("call center marker: orderSource moto, cardNotPresent false"), "\(shown.stdout)")
            let json = try await cli(db, ["merchant", "show", "shoes", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let marker = try #require(object["callCenter"] as? [String: Any])
            #expect(marker["orderSource"] as? String == "moto")
            #expect(marker["cardNotPresent"] as? Bool == false)

            #expect(try await cli(db, ["merchant", "set", "shoes", "--call-center-order-source", "none", "--actor", "bob"]).status == 0)
            let history = try await cli(db, ["merchant", "history", "shoes"]).stdout
            #expect(history.contains("bob  set  call_center_order_source: call_center → moto"), "\(history)")
            #expect(history.contains("bob  set  call_center_card_not_present: true → false"))
            #expect(history.contains("bob  set  call_center_order_source: moto → none"))

            // Refused, with the rule and nothing changed: a bad value, a site, a flag that is not a boolean.
            for arguments in [["--call-center-order-source", "bad\tvalue"], ["--call-center-order-source", "x", "--site", "promo.example"],
                              ["--call-center-card-not-present", "maybe"]] {
                let refused = try await cli(db, ["merchant", "set", "shoes"] + arguments)
                #expect(refused.status == 2, "\(arguments): \(refused.stderr)")
                #expect(refused.stderr.contains("call-center"), "\(refused.stderr)")
            }
            let after = try await cli(db, ["merchant", "show", "shoes"])
            #expect(after.stdout.contains("call center marker: orderSource none, cardNotPresent false"), "\(after.stdout)")
        }
    }
}
