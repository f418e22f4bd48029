import Foundation
import Testing
import TestSupport

/// The queue page refreshes itself in the browser (its small script fetches /queue/live): events the
/// gateway writes show up in the totals without reloading the page.
@Suite(.serialized, .enabled(if: ChromeDriver.shouldRun, ChromeDriver.skipReason))
struct QueueLiveBrowserTests {
    @Test func newEventsShowUpInThePendingTotalWithoutAReload() async throws {
        try await ConsoleStack.with { stack in
            try await stack.addUser("vera", role: "viewer")
            try await stack.enrol("shoes", name: "Shoes R Us")
            try await ChromeDriver.withBrowser { browser in
                try await browser.signIn(stack, as: "vera")
                try await browser.open(stack.consoleURL + "/queue")
                let pending = "#queue-live [data-total=pending]"
                _ = try await browser.waitFor(pending)
                // The live script replaces the totals while they are read: each read finds and reads in one step.
                #expect(try await browser.text(of: pending) == "0")
                // A mark on this very document: a reload would lose it.
                try await browser.execute("window.notReloaded = true")

                try await stack.cli(["sample-events", "--merchant", "shoes", "--orders", "3"])  // no worker: they stay pending
                try await browser.waitUntil("the pending total to show the new events", timeout: .seconds(60)) {
                    (Int(try await browser.text(of: pending) ?? "") ?? 0) > 0
                }
                #expect(try await browser.execute("return window.notReloaded === true") as? Bool == true, "the page was reloaded")
                #expect(try await browser.find("#queue-live[data-updated]") != nil)
            }
        }
    }
}
