import ArgumentParser
import Foundation
import LibPQ
import OutboxEngine

/// `flexcharge-outbox sample-events`: writes example events as a gateway would, to try a setup
/// against the sandbox.
struct SampleEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-events",
        abstract: "Insert example events (transmits, CIT and MIT evaluates) for trying a setup against the sandbox.",
        discussion: """
            Each order gets a transmit; a third of them are declined and get an evaluate too: CIT \
            website, CIT call center or MIT, approved or declined by the sandbox's rules (payer \
            e-mail approve…/decline…). Payloads carry tokens, never card numbers.

            Example:
              flexcharge-outbox sample-events --merchant shoes-r-us --merchant books-direct --orders 60
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Merchant ids to spread the orders over (repeatable).") var merchant: [String] = []
    @Option(help: "Orders per merchant.") var orders = 30

    func run() async throws {
        guard !merchant.isEmpty else { throw CLIFailure.badInput("give at least one --merchant") }
        guard orders > 0 && orders <= 100_000 else { throw CLIFailure.badInput("--orders must be 1 to 100000") }
        let run = UUID().uuidString.prefix(6).lowercased()
        let merchants = merchant
        let orderCount = orders
        let inserted = try await database.withSession { session -> Int in
            try await session.withTransaction { tx in
                var count = 0
                for (m, merchantID) in merchants.enumerated() {
                    for n in 0..<orderCount {
                        let order = "\(merchantID)-\(run)-\(n)"
                        let declined = n % 3 == 0
                        let amount = 1000 + (n * 37 % 900)
                        let site = n % 2 == 0 ? "https://\(merchantID).example" : nil
                        let descriptor = "\(merchantID.uppercased().prefix(10))*ONLINE"
                        let channel = n % 6 == 3 ? "mit" : "cit"
                        let origin = channel == "mit" ? nil : (n % 5 == 0 ? "call_center" : "website")
                        try Self.insert(tx, "transmit", merchantID, order, channel, origin, site, descriptor,
                                        SamplePayloads.transmit(orderID: order, amountCents: amount, declined: declined, descriptor: descriptor))
                        count += 1
                        if declined {
                            let email = (n + m) % 4 == 0 ? "decline-\(order)@example.com" : "approve-\(order)@example.com"
                            try Self.insert(tx, "evaluate", merchantID, order, channel, origin, site, descriptor,
                                            SamplePayloads.evaluate(orderID: order, amountCents: amount, payerEmail: email, mit: channel == "mit",
                                                                    descriptor: descriptor))
                            count += 1
                        }
                    }
                }
                return count
            }
        }
        print("inserted \(inserted) events for \(merchants.count) merchant(s)")
    }

    private static func insert(
        _ tx: isolated PGSession, _ kind: String, _ merchantID: String, _ order: String, _ channel: String, _ origin: String?,
        _ site: String?, _ descriptor: String, _ payload: String
    ) throws {
        try tx.execute(
            """
            INSERT INTO flexcharge.outbox (kind, merchant_id, order_id, channel, origin, site_url, descriptor, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
            """, [kind, merchantID, order, channel, origin, site, descriptor, PGJSON(text: payload)])
    }
}
