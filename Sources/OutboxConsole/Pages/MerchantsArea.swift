import Foundation
import Hummingbird
import LibPQ
import OutboxEngine

/// The Merchants pages: every merchant with its channel switches, one merchant's switches, site
/// overrides, credentials (which are set, never their values) and audit trail, and the reviewed
/// change of a switch (admins). Everything is read and changed through `MerchantStore`, as the CLI's
/// `merchant` commands do; a change is audited under the signed-in user.
enum MerchantsArea: ConsoleArea {
    static let navigation: ConsoleNavigation? = ConsoleNavigation(
        title: "Merchants", path: "/merchants", order: 10, summary: "Channel switches, site overrides, credentials set, audit trail")

    static let assets = [ConsoleAsset(name: "merchants-events.css", contentType: "text/css; charset=utf-8", body: MerchantsStyle.css)]

    static func register(_ routes: ConsoleRoutes) {
        routes.get("/merchants") { _, context in
            let merchants = try await routes.services.withSession { session in
                let store = MerchantStore(session: session, actor: "")
                var all: [(MerchantSettings, [CredentialStatus])] = []
                for merchant in try await store.list() {
                    guard let settings = try await store.settings(merchant.merchantID) else { continue }
                    all.append((settings, try await store.credentialStatus(merchant.merchantID)))
                }
                return all
            }
            return ConsolePage(title: "Merchants", body: list(merchants, context: context), stylesheets: ["merchants-events.css"])
        }
        routes.get("/merchants/:merchant") { _, context in
            let merchantID = try merchantParameter(context)
            let page = try await routes.services.withSession { session -> MerchantsDetail? in
                let store = MerchantStore(session: session, actor: "")
                guard let settings = try await store.settings(merchantID) else { return nil }
                return MerchantsDetail(
                    settings: settings, credentials: try await store.credentialStatus(merchantID),
                    history: try await store.history(merchantID))
            }
            guard let page else { throw ConsoleError.notFound("Merchant \(merchantID)") }
            return ConsolePage(title: "Merchant \(merchantID)", body: page.body(context: context), stylesheets: ["merchants-events.css"])
        }
        MerchantsSwitchChange.register(routes)
    }

    /// The merchant id of a `/merchants/:merchant…` route.
    static func merchantParameter(_ context: ConsoleRequestContext) throws(ConsoleError) -> String {
        guard let raw = context.parameters.get("merchant"), !raw.isEmpty else { throw ConsoleError.badRequest("No merchant was named.") }
        return MerchantsLinks.decoded(raw)
    }

    static func list(_ merchants: [(MerchantSettings, [CredentialStatus])], context: ConsoleRequestContext) -> HTML {
        guard !merchants.isEmpty else {
            return "<p>No merchant is enrolled yet. Enrol one with <code>flexcharge-outbox merchant add</code>.</p>"
        }
        let rows = merchants.map { settings, credentials -> HTML in
            let switches = HTML(Channel.allCases.map { channel -> HTML in
                "<td>\(MerchantsLinks.badge(settings.switches[channel] ?? .off))</td>"
            })
            let environments = credentials.map(\.environment)
            let credentialCell = HTML(["sandbox", "production"].map { environment -> HTML in
                environments.contains(environment) ? "<span class=\"badge ok\">\(environment) set</span> " : "<span class=\"badge\">\(environment) none</span> "
            })
            return """
                <tr><th scope="row"><a href="\(MerchantsLinks.merchant(settings.merchantID))">\(settings.merchantID)</a></th>
                <td>\(settings.name)</td>\(switches)<td class="num">\(settings.sites.count)</td><td>\(credentialCell)</td>
                <td>\(settings.rateLimit.map { "\($0)" } ?? "none")</td></tr>
                """
        }
        let headers = HTML(Channel.allCases.map { channel -> HTML in "<th scope=\"col\">\(MerchantsLinks.title(channel))</th>" })
        return """
            <p>Each channel is <strong>off</strong> (events skipped), <strong>sandbox</strong> or <strong>production</strong> \
            (real cards, real money). A site can override any switch. Changes apply to events claimed after them.</p>
            <div class="table-wrap"><table id="merchants">
            <caption class="visually-hidden">Merchants and their channel switches</caption>
            <thead><tr><th scope="col">Merchant</th><th scope="col">Name</th>\(headers)<th scope="col" class="num">Site overrides</th>
            <th scope="col">Credentials</th><th scope="col">Rate limit</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }
}

/// The Merchants and Events pages' own rules, on top of `console.css`.
enum MerchantsStyle {
    static let css = """
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0 1rem; }
        dl.facts dt { font-weight: 600; }
        dl.facts dd { margin: 0; overflow-wrap: anywhere; }
        pre.payload { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: .75rem;
          overflow-x: auto; max-height: 32rem; font-size: .9rem; }
        ol.timeline { list-style: none; margin: .5rem 0; padding: 0 0 0 1rem; border-left: 3px solid var(--line); }
        ol.timeline li { margin: 0 0 .75rem; padding-left: .5rem; position: relative; }
        ol.timeline li::before { content: ""; position: absolute; left: -1.45rem; top: .45rem; width: .7rem; height: .7rem;
          border-radius: 50%; background: var(--accent); }
        ol.timeline li.failure::before { background: var(--bad); }
        ol.timeline li.operator::before { background: var(--warn); }
        .warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem .75rem; border-radius: 4px; }
        .danger-note { background: #ffebe9; border: 1px solid #ff8182; padding: .5rem .75rem; border-radius: 4px; font-weight: 600; }
        form.inline { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin: 0; }
        form.inline label { margin: 0; }
        textarea.reason { width: 100%; max-width: 40rem; min-height: 4rem; }
        @media (max-width: 640px) { dl.facts { grid-template-columns: 1fr; } dl.facts dd { margin-bottom: .4rem; } }
        """
}
