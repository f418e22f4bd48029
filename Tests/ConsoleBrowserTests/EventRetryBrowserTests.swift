import Foundation
import LibPQ
import Testing
import TestSupport

/// Retrying a dead event from its page: a real worker, which had given the event up while
/// FlexCharge answered 503, delivers it once the operator retries it with a reason.
@Suite(.serialized, .enabled(if: ChromeDriver.shouldRun, ChromeDriver.skipReason))
struct EventRetryBrowserTests {
    /// The simulator answers the first two transmits with 503; the worker gives up after two attempts.
    static let faults = ["POST /transmit=503#2"]

    @Test func anOperatorRetriesADeadEventAndTheWorkerDeliversIt() async throws {
        try await ConsoleStack.with(sandboxFaults: Self.faults) { stack in
            try await stack.addUser("otto", role: "operator")
            let id = try await stack.deadTransmit()
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "otto")
                // Found with the search form, as a person would. After each click that navigates, the next
                // element is looked for only once the new page's address is in place: the page before (the
                // unfiltered list also links the event) would otherwise answer, and its element go stale.
                try await browser.click(try await browser.waitFor("nav[aria-label=Main] a[href='/events']"))
                try await browser.waitUntil("the events page is open") { try await browser.currentURL().hasSuffix("/events") }
                try await browser.click(try await browser.waitFor("select#search-state option[value=dead]"))
                try await browser.click(try await browser.waitFor("form#event-search button[type=submit]"))
                try await browser.waitUntil("the search for dead events is open") { try await browser.currentURL().contains("state=dead") }
                try await browser.click(try await browser.waitFor("table#events a[href='/events/\(id)']"))
                try await browser.waitUntil("event \(id)'s page is open") { try await browser.currentURL().hasSuffix("/events/\(id)") }
                #expect(try await browser.text(try await browser.waitFor("[data-field=state]")).contains("dead"))

                try await browser.type("FlexCharge was down; it is back", into: try await browser.waitFor("form[data-action=retry] textarea[name=reason]"))
                try await browser.click(try await browser.waitFor("form[data-action=retry] button[type=submit]"))
                let notice = try await browser.text(try await browser.waitFor(".notice"))
                #expect(notice.contains("requeued"), "notice: \(notice)")

                // The page shows the worker's delivery (reloaded as a person would).
                try await browser.waitUntil("event \(id) shown as succeeded", timeout: .seconds(60)) {
                    try await browser.open(stack.consoleURL + "/events/\(id)")
                    return try await browser.text(try await browser.waitFor("[data-field=state]")).contains("succeeded")
                }
                let timeline = try await browser.text(try await browser.waitFor("#attempts"))
                #expect(timeline.contains("console:otto"), "the retry is not on the timeline under the operator: \(timeline)")
            }
            let event = try await stack.session.query("SELECT state::text AS state FROM flexcharge.outbox WHERE id = $1", [id]).first!
            #expect(try event.decode("state", as: String.self) == "succeeded")
            let sends = try await stack.session.query(
                "SELECT http_status FROM flexcharge.attempts WHERE event_id = $1 AND http_status IS NOT NULL ORDER BY id", [id]
            ).rows.map { try $0.decode("http_status", as: Int.self) }
            #expect(sends == [503, 503, 200], "sends of the event: \(sends)")
        }
    }

    @Test func aViewerIsOfferedNoRetryAndItsRetryIsRefused() async throws {
        try await ConsoleStack.with(sandboxFaults: Self.faults) { stack in
            try await stack.addUser("vera", role: "viewer")
            let id = try await stack.deadTransmit()
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "vera")
                try await browser.open(stack.consoleURL + "/events/\(id)")
                #expect(try await browser.text(try await browser.waitFor("[data-field=state]")).contains("dead"))
                #expect(try await browser.find("form[data-action=retry]") == nil, "a viewer is offered the retry")
                let status = try await browser.postForm("/events/\(id)/retry", ["reason": "viewer tries"])
                #expect(status == 403)
            }
            // Still dead: not requeued (a requeued event is pending, running or delivered).
            let event = try await stack.session.query("SELECT state::text AS state FROM flexcharge.outbox WHERE id = $1", [id]).first!
            #expect(try event.decode("state", as: String.self) == "dead")
        }
    }
}

extension ConsoleStack {
    /// A merchant's transmit that a running worker gave up (dead) after the simulator's 503s; its id.
    /// The worker keeps running (stopped with the test).
    func deadTransmit() async throws -> Int64 {
        try await enrol("shoes", name: "Shoes R Us", citWebsite: "sandbox", citCallCenter: "sandbox", mit: "sandbox")
        // One order of the CLI's samples: a declined call-center CIT payment (a transmit and an evaluate).
        try await cli(["sample-events", "--merchant", "shoes", "--orders", "1"])
        let worker = try startWorker(maxAttempts: 2)
        workers.append(worker)
        try await waitUntil("SELECT count(*) = 2 FROM flexcharge.outbox WHERE state IN ('dead', 'succeeded')")
        let row = try await session.query("SELECT id, state::text AS state FROM flexcharge.outbox WHERE kind = 'transmit'").first!
        guard try row.decode("state", as: String.self) == "dead" else { throw TestSupportError("the transmit did not die: \(row)") }
        return try row.decode("id", as: Int64.self)
    }
}
