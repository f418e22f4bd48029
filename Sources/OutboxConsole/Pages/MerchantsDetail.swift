import Foundation
import OutboxEngine

/// One merchant's page: switches, site overrides, credentials (set or not, never values), the
/// call-center marker and rate limit, and the audit trail. Admins get the forms that start a
/// reviewed switch change (``MerchantsSwitchChange``).
struct MerchantsDetail {
    let settings: MerchantSettings
    let credentials: [CredentialStatus]
    let history: [AuditEntry]

    /// The most audit rows shown (newest first).
    static let auditRows = 200

    func body(context: ConsoleRequestContext) -> HTML {
        let admin = context.may(.admin)
        return """
            <dl class="facts"><dt>Merchant id</dt><dd>\(settings.merchantID)</dd><dt>Name</dt><dd>\(settings.name ?? "—")</dd>
            <dt>Events</dt><dd><a href="\(MerchantsLinks.events(merchant: settings.merchantID))">Search this merchant's events</a></dd></dl>
            \(switches(admin: admin))
            \(sites(admin: admin))
            \(credentialTable)
            \(other)
            \(audit)
            """
    }

    private var path: String { MerchantsLinks.merchant(settings.merchantID) }

    private func switches(admin: Bool) -> HTML {
        let rows = Channel.allCases.map { channel -> HTML in
            let current = settings.switches[channel] ?? .off
            let form: HTML = admin ? "<td>\(reviewForm(channel: channel, current: current))</td>" : .empty
            return "<tr><th scope=\"row\">\(MerchantsLinks.title(channel))</th><td>\(MerchantsLinks.badge(current))</td>\(form)</tr>"
        }
        let changeHeader: HTML = admin ? "<th scope=\"col\">Change</th>" : .empty
        return """
            <section aria-labelledby="switches-heading"><h2 id="switches-heading">Channel switches</h2>
            <div class="table-wrap"><table id="switches"><thead><tr><th scope="col">Channel</th><th scope="col">Switch</th>\(changeHeader)</tr></thead>
            <tbody>\(rows)</tbody></table></div></section>
            """
    }

    /// A GET form to the review page of one channel's switch (nothing changes before the confirmation).
    private func reviewForm(channel: Channel, current: ChannelSwitch) -> HTML {
        let id = "switch-\(channel.rawValue)"
        let options = HTML(ChannelSwitch.allCases.map { value -> HTML in
            "<option value=\"\(value.rawValue)\"\(value == current ? HTML(" selected") : .empty)>\(value.rawValue)</option>"
        })
        return """
            <form class="inline" method="get" action="\(path)/switch" data-action="switch-review">
            <input type="hidden" name="channel" value="\(channel.rawValue)">
            <label for="\(id)" class="visually-hidden">New \(MerchantsLinks.title(channel)) switch</label>
            <select id="\(id)" name="value">\(options)</select>
            <button type="submit">Review change</button></form>
            """
    }

    private func sites(admin: Bool) -> HTML {
        let rows = settings.sites.sorted { $0.key < $1.key }.map { site, overrides -> HTML in
            let cells = HTML(Channel.allCases.map { channel -> HTML in
                if let value = overrides[channel] { return "<td>\(MerchantsLinks.badge(value))</td>" }
                return "<td><span class=\"muted\">inherit (\((settings.switches[channel] ?? .off).rawValue))</span></td>"
            })
            return "<tr><th scope=\"row\">\(site)</th>\(cells)</tr>"
        }
        let headers = HTML(Channel.allCases.map { "<th scope=\"col\">\(MerchantsLinks.title($0))</th>" as HTML })
        let table: HTML = rows.isEmpty
            ? "<p>No site overrides: every site follows the merchant's switches.</p>"
            : """
              <div class="table-wrap"><table id="sites"><thead><tr><th scope="col">Site (website or campaign)</th>\(headers)</tr></thead>
              <tbody>\(rows)</tbody></table></div>
              """
        return """
            <section aria-labelledby="sites-heading"><h2 id="sites-heading">Site overrides</h2>
            <p class="muted">A site is an event's <code>site_url</code>, else its descriptor.</p>
            \(table)\(admin ? siteForm : .empty)</section>
            """
    }

    private var siteForm: HTML {
        let channels = HTML(Channel.allCases.map { "<option value=\"\($0.rawValue)\">\(MerchantsLinks.title($0))</option>" as HTML })
        let values = HTML((ChannelSwitch.allCases.map(\.rawValue) + [ChannelSwitch.inherit]).map { "<option value=\"\($0)\">\($0)</option>" as HTML })
        let known = HTML(settings.sites.keys.sorted().map { "<option value=\"\($0)\"></option>" as HTML })
        return """
            <h3>Set a site override</h3>
            <form method="get" action="\(path)/switch" data-action="site-review"><div class="form-grid">
            <div><label for="site-name">Site</label><input type="text" id="site-name" name="site" list="known-sites" required
            placeholder="https://promo.shop.example"><datalist id="known-sites">\(known)</datalist></div>
            <div><label for="site-channel">Channel</label><select id="site-channel" name="channel">\(channels)</select></div>
            <div><label for="site-value">Switch</label><select id="site-value" name="value">\(values)</select></div>
            </div><p><button type="submit">Review change</button></p></form>
            """
    }

    private var credentialTable: HTML {
        let rows = ["sandbox", "production"].map { environment -> HTML in
            guard let stored = credentials.first(where: { $0.environment == environment }) else {
                return "<tr><th scope=\"row\">\(environment)</th><td colspan=\"7\">none stored</td></tr>"
            }
            func set(_ flag: Bool) -> HTML { flag ? "<span class=\"badge ok\">set</span>" : "<span class=\"badge\">not set</span>" }
            return """
                <tr><th scope="row">\(environment)</th><td>\(stored.mid)</td><td>\(set(true))</td><td>\(set(true))</td>
                <td>\(set(stored.hasTokenizationKey))</td><td>\(set(stored.hasWebhookKey))</td><td>\(stored.keyID)</td>
                <td>\(MerchantsLinks.time(stored.updatedAt))</td></tr>
                """
        }
        return """
            <section aria-labelledby="credentials-heading"><h2 id="credentials-heading">Credentials</h2>
            <p class="muted">Which secrets are stored, sealed; their values are never shown. Store them with
            <code>flexcharge-outbox merchant credentials</code>.</p>
            <div class="table-wrap"><table id="credentials"><thead><tr><th scope="col">Environment</th><th scope="col">MID</th>
            <th scope="col">App key</th><th scope="col">App secret</th><th scope="col">Tokenization key</th><th scope="col">Webhook key</th>
            <th scope="col">Sealed with key</th><th scope="col">Stored</th></tr></thead><tbody>\(rows)</tbody></table></div></section>
            """
    }

    private var other: HTML {
        let marker = settings.callCenter
        return """
            <section aria-labelledby="other-heading"><h2 id="other-heading">Other settings</h2><dl class="facts">
            <dt>Call-center marker</dt><dd>orderSource \(marker.orderSource ?? "none"), cardNotPresent \(String(marker.cardNotPresent))</dd>
            <dt>Rate limit</dt><dd>\(settings.rateLimit.map { "\($0) per environment" } ?? "none")</dd></dl></section>
            """
    }

    private var audit: HTML {
        let shown = history.suffix(Self.auditRows).reversed()
        let rows = shown.map { entry -> HTML in
            """
            <tr><td>\(MerchantsLinks.time(entry.at))</td><td>\(entry.actor)</td><td>\(entry.action)</td><td>\(entry.field)</td>\
            <td>\(entry.old ?? "—")</td><td>\(entry.new ?? "—")</td></tr>
            """
        }
        let more: HTML = history.count > Self.auditRows
            ? "<p class=\"muted\">The newest \(Self.auditRows) of \(history.count) changes; all: <code>flexcharge-outbox merchant history</code>.</p>"
            : .empty
        return """
            <section aria-labelledby="audit-heading"><h2 id="audit-heading">Audit trail</h2>\(more)
            <div class="table-wrap"><table id="audit"><caption class="visually-hidden">Changes to this merchant, newest first</caption>
            <thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Field</th>
            <th scope="col">Old</th><th scope="col">New</th></tr></thead><tbody>\(rows)</tbody></table></div></section>
            """
    }
}
