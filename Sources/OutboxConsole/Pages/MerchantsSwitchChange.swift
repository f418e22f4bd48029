import Foundation
import Hummingbird
import OutboxEngine

/// Changing a switch (admins): a review page that says what the change will affect
/// (``SwitchImpact``: pending events per lane, retries that change environment, real money,
/// missing credentials, sites that keep their own value), then the POST that makes it through
/// `MerchantStore.set`, as `merchant set` does, audited under the signed-in user. The POST carries
/// the value the admin reviewed: if the switch changed meanwhile, it is refused and reviewed again.
enum MerchantsSwitchChange {
    static func register(_ routes: ConsoleRoutes) {
        routes.get("/merchants/:merchant/switch", role: .admin) { request, context in
            let change = try Change(MerchantsArea.merchantParameter(context), FormFields(urlEncoded: request.uri.query ?? ""))
            let impact = try await routes.services.withSession { session in
                try await MerchantStore(session: session, actor: "").impact(
                    of: change.value, on: change.channel, of: change.merchantID, site: change.site)
            }
            guard let impact else { throw ConsoleError.notFound("Merchant \(change.merchantID)") }
            return ConsolePage(title: "Review: \(change.title)", body: review(impact, change: change, context: context),
                               stylesheets: ["merchants-events.css"])
        }
        routes.post("/merchants/:merchant/switch", role: .admin) { _, context in
            let change = try Change(MerchantsArea.merchantParameter(context), context.form)
            let expected = try context.form.required("expected", label: "The reviewed value")
            let actor = try context.actor
            try await routes.services.withSession { session in
                let store = MerchantStore(session: session, actor: actor)
                guard let impact = try await store.impact(of: change.value, on: change.channel, of: change.merchantID, site: change.site)
                else { throw ConsoleError.notFound("Merchant \(change.merchantID)") }
                let now = impact.current?.rawValue ?? ChannelSwitch.inherit
                guard now == expected else {
                    throw ConsoleError(.conflict, "The switch was changed meanwhile (it is \(now) now, you reviewed \(expected)): review the change again.")
                }
                do {
                    try await store.set(change.merchantID, site: change.site, name: nil, switches: [change.channel: change.value])
                } catch let error as MerchantError {
                    throw ConsoleError.badRequest(error.description)
                }
            }
            return ConsoleRedirect(to: MerchantsLinks.merchant(change.merchantID) + "#audit",
                                   notice: "\(change.title) set to \(change.value?.rawValue ?? ChannelSwitch.inherit).")
        }
    }

    /// A change as the review link or the confirmation form states it.
    struct Change {
        let merchantID: String
        /// Nil: the merchant's own switch.
        let site: String?
        let channel: Channel
        /// Nil: inherit (a site only).
        let value: ChannelSwitch?

        init(_ merchantID: String, _ fields: FormFields) throws(ConsoleError) {
            self.merchantID = merchantID
            let site = fields["site"]?.trimmingCharacters(in: .whitespacesAndNewlines)
            self.site = site?.isEmpty == false ? site : nil
            guard let channel = Channel(rawValue: fields["channel"] ?? "") else {
                throw ConsoleError.badRequest("Choose a channel: \(Channel.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            self.channel = channel
            guard let value = ChannelSwitch.parse(fields["value"] ?? "", allowInherit: self.site != nil) else {
                throw ConsoleError.badRequest("A switch is off, sandbox or production\(self.site != nil ? " (or inherit for a site)" : "").")
            }
            self.value = value
        }

        var title: String {
            "\(MerchantsLinks.title(channel)) of \(merchantID)" + (site.map { ", site \($0)" } ?? "")
        }
    }

    static func review(_ impact: SwitchImpact, change: Change, context: ConsoleRequestContext) -> HTML {
        let from = impact.current?.rawValue ?? "inherit (\(impact.inheritedValue.rawValue))"
        let to = impact.proposed?.rawValue ?? "inherit (\(impact.inheritedValue.rawValue))"
        let back = MerchantsLinks.merchant(change.merchantID)
        if impact.isNoChange {
            return "<p>\(change.title) is already \(from): nothing to change.</p><p><a href=\"\(back)\">Back to the merchant</a></p>"
        }
        var notes: [HTML] = []
        if impact.goesToProduction {
            notes.append("""
                <p class="danger-note" role="note">Production means real money: FlexCharge will act on real cards for these \
                events (an approved evaluate charges the shopper's card).</p>
                """)
        }
        if impact.lacksCredentials {
            notes.append("""
                <p class="warning" role="note">This merchant has no \(impact.effectiveProposed.rawValue) credentials: its events on \
                this channel will fail (<code>config</code>) until they are stored with <code>flexcharge-outbox merchant credentials</code>.</p>
                """)
        }
        if impact.effectiveProposed == .off {
            notes.append("""
                <p class="warning" role="note">While off, this channel's events are skipped when claimed and never sent. \
                They can be sent later with <code>flexcharge-outbox replay-skipped</code> once the channel is on again.</p>
                """)
        }
        let attempted = impact.pending.reduce(0) { $0 + $1.attempted }
        if attempted > 0 {
            notes.append("""
                <p class="warning" role="note">\(attempted) of these events were already attempted under the current value \
                (\(impact.effectiveCurrent.rawValue)); their next attempt goes to \(impact.effectiveProposed.rawValue).</p>
                """)
        }
        if !impact.overridingSites.isEmpty {
            notes.append("<p>Not affected: sites with their own \(MerchantsLinks.title(change.channel)) value: \(impact.overridingSites.joined(separator: ", ")).</p>")
        }
        let lanes = impact.pending.map { lane -> HTML in
            "<tr><th scope=\"row\">\(lane.lane)</th><td class=\"num\">\(lane.events)</td><td class=\"num\">\(lane.attempted)</td></tr>"
        }
        let button: HTML = impact.goesToProduction
            ? "<button type=\"submit\" class=\"danger\">Switch to production</button>"
            : "<button type=\"submit\" class=\"primary\">Change the switch</button>"
        return """
            <dl class="facts"><dt>Merchant</dt><dd>\(change.merchantID)</dd>
            <dt>Applies to</dt><dd>\(change.site.map { "site \($0)" } ?? "the merchant's events on sites without their own value")</dd>
            <dt>Channel</dt><dd>\(MerchantsLinks.title(change.channel))</dd>
            <dt>Now</dt><dd>\(from)</dd><dt>After</dt><dd>\(to)</dd></dl>
            <h2>What it affects</h2>
            <p id="impact-total">\(impact.pendingTotal) pending event(s) will be routed to \(impact.effectiveProposed.rawValue) \
            when a worker next claims them (test events always go to the sandbox; events already sent are not changed).</p>
            <div class="table-wrap"><table id="impact"><thead><tr><th scope="col">Lane</th><th scope="col" class="num">Pending events</th>
            <th scope="col" class="num">Already attempted</th></tr></thead><tbody>\(lanes)</tbody></table></div>
            \(notes)
            <form method="post" action="\(back)/switch" data-action="switch">\(HTML.csrfField(context))
            <input type="hidden" name="channel" value="\(change.channel.rawValue)">
            <input type="hidden" name="value" value="\(change.value?.rawValue ?? ChannelSwitch.inherit)">
            <input type="hidden" name="site" value="\(change.site)">
            <input type="hidden" name="expected" value="\(impact.current?.rawValue ?? ChannelSwitch.inherit)">
            <div class="actions">\(button)<a class="button" href="\(back)">Cancel</a></div></form>
            """
    }
}
