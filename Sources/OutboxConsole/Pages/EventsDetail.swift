import Foundation
import Hummingbird
import LibPQ
import OutboxEngine

/// One event's page: what it is and where it stands, its payload with card data masked (by the
/// database: `flexcharge.masked_payload`, migrations/0024; the raw payload is never read), every
/// attempt on a timeline (workers' calls, expired leases, operators' retries and skips with their
/// reasons), the outcome and the webhooks received, and the operators' retry and skip forms.
enum EventsDetail {
    static func register(_ routes: ConsoleRoutes) {
        routes.get("/events/:event") { _, context in
            let id = try eventParameter(context)
            let found = try await routes.services.withSession { session -> (PGRow, PGResult, PGResult, String?)? in
                let queries = EventQueries(session: session)
                guard let event = try await queries.event(id) else { return nil }
                return (event, try await queries.attempts(id), try await queries.outcomes(id), try await queries.maskedPayload(id))
            }
            guard let (event, attempts, outcomes, payload) = found else { throw ConsoleError.notFound("Event \(id)") }
            let payloadSection: HTML = """
                <section aria-labelledby="payload-heading"><h2 id="payload-heading">Payload</h2>
                <p class="muted">Card fields, card numbers and credentials are masked.</p>
                <pre class="payload" id="payload" tabindex="0" aria-label="Payload, card data masked">\(payload ?? "")</pre></section>
                """
            let body: HTML = try summary(event) + actions(event, context: context) + timeline(attempts) + webhooks(outcomes) + payloadSection
            return ConsolePage(title: "Event \(id)", body: body, stylesheets: ["merchants-events.css"])
        }
    }

    /// The event id of an `/events/:event…` route.
    static func eventParameter(_ context: ConsoleRequestContext) throws(ConsoleError) -> Int64 {
        guard let text = context.parameters.get("event"), let id = Int64(text), id > 0 else {
            throw ConsoleError.notFound("That event")
        }
        return id
    }

    /// A state as a badge (the word always written).
    static func stateBadge(_ state: String) -> HTML {
        let tone = switch state {
        case "succeeded": "badge ok"
        case "dead", "failed": "badge bad"
        case "pending", "running", "awaiting_outcome": "badge warn"
        default: "badge"
        }
        return "<span class=\"\(tone)\">\(state)</span>"
    }

    static func summary(_ event: PGRow) throws -> HTML {
        func text(_ column: String) throws -> String? { try event.decode(column, as: String?.self) }
        let merchant: String = try event.decode("merchant_id")
        let order: String = try event.decode("order_id")
        let amount: HTML = if let cents = try event.decode("amount_cents", as: Int64?.self) {
            "\(String(format: "%.2f", Double(cents) / 100)) \(try text("currency") ?? "")"
        } else { "—" }
        let fieldErrors: HTML = if let errors = try text("field_errors") { "<dt>Field errors</dt><dd><code>\(errors)</code></dd>" } else { .empty }
        return """
            <dl class="facts" id="event-summary">
            <dt>State</dt><dd data-field="state">\(stateBadge(try event.decode("state")))</dd>
            <dt>Decision</dt><dd data-field="decision">\(try text("decision") ?? "—")</dd>
            <dt>Kind</dt><dd>\(try event.decode("kind", as: String.self))</dd>
            <dt>Merchant</dt><dd><a href="\(MerchantsLinks.merchant(merchant))">\(merchant)</a></dd>
            <dt>Order</dt><dd><a href="\(MerchantsLinks.events(merchant: merchant, order: order))">\(order)</a> (all its events)</dd>
            <dt>Channel</dt><dd>\(try event.decode("channel", as: String.self)) \(try text("origin"))</dd>
            <dt>Site</dt><dd>\(try text("site") ?? "—")</dd>
            <dt>Environment</dt><dd>\(try text("environment") ?? "not routed yet")</dd>
            <dt>Amount</dt><dd>\(amount)</dd>
            <dt>Attempts</dt><dd>\(try event.decode("attempts", as: Int.self))</dd>
            <dt>Next action</dt><dd>\(try text("next_action") ?? "") at \(MerchantsLinks.time(try event.decode("next_attempt_at", as: Date?.self)))</dd>
            <dt>Last HTTP status</dt><dd>\(try text("last_http_status") ?? "—")</dd>
            <dt>Last error</dt><dd>\(try text("last_error_class").map { "[\($0)] " } ?? "")\(try text("last_error") ?? "—")</dd>
            \(fieldErrors)
            <dt>FlexCharge order</dt><dd>\(try text("order_session_key") ?? "—")</dd>
            <dt>Transmit id</dt><dd>\(try text("transaction_key") ?? "—")</dd>
            <dt>Idempotency key</dt><dd><code>\(try text("idempotency_key"))</code></dd>
            <dt>Created</dt><dd>\(MerchantsLinks.time(try event.decode("created_at", as: Date.self)))</dd>
            <dt>Completed</dt><dd>\(MerchantsLinks.time(try event.decode("completed_at", as: Date?.self)))</dd>
            </dl>
            """
    }

    /// Retry and skip for operators, offered in the states `OperatorActions` accepts them.
    static func actions(_ event: PGRow, context: ConsoleRequestContext) throws -> HTML {
        let state: String = try event.decode("state")
        let id: Int64 = try event.decode("id")
        guard context.may(.operator) else {
            return OperatorActions.retryableStates.contains(state) || OperatorActions.skippableStates.contains(state)
                ? "<p class=\"muted\">An operator can retry or skip this event.</p>" : .empty
        }
        var forms: [HTML] = []
        if OperatorActions.retryableStates.contains(state) {
            forms.append(form(id: id, action: "retry", context: context, button: "Retry", hint: """
                Requeued with its own idempotency key. An event that may have reached FlexCharge is looked up first; \
                an evaluate past FlexCharge's idempotency window is only looked up, never sent again.
                """))
        }
        if OperatorActions.skippableStates.contains(state) {
            forms.append(form(id: id, action: "skip", context: context, button: "Skip", hint: "Marked skipped: it is never sent."))
        }
        guard !forms.isEmpty else { return .empty }
        return "<section aria-labelledby=\"actions-heading\"><h2 id=\"actions-heading\">Actions</h2>\(forms)</section>"
    }

    private static func form(id: Int64, action: String, context: ConsoleRequestContext, button: String, hint: String) -> HTML {
        """
        <form method="post" action="/events/\(id)/\(action)" data-action="\(action)">\(HTML.csrfField(context))
        <label for="\(action)-reason">Reason to \(action) (kept in the event's history)</label>
        <textarea class="reason" id="\(action)-reason" name="reason" required aria-describedby="\(action)-hint"></textarea>
        <p id="\(action)-hint" class="muted">\(hint)</p>
        <p><button type="submit" class="\(action == "skip" ? "danger" : "primary")">\(button) event \(id)</button></p></form>
        """
    }

    static func timeline(_ attempts: PGResult) throws -> HTML {
        let items = try attempts.rows.map { row -> HTML in
            func text(_ column: String) throws -> String? { try row.decode(column, as: String?.self) }
            let action: String = try row.decode("action")
            let failure = try text("failure_class")
            let tone = action.hasPrefix("operator_") ? "operator" : (failure != nil ? "failure" : "success")
            var facts: [String] = ["attempt \(try row.decode("attempt", as: Int.self))", "by \(try row.decode("worker", as: String.self))"]
            if let environment = try text("environment") { facts.append(environment) }
            if let status = try text("http_status") { facts.append("HTTP \(status)") }
            if let latency = try row.decode("latency_ms", as: Double?.self) { facts.append("\(Int(latency.rounded())) ms") }
            if let failure { facts.append(failure) }
            let started = try row.decode("started_at", as: Date.self)
            return """
                <li class="\(tone)"><time datetime="\(MerchantsLinks.time(started))">\(MerchantsLinks.time(started))</time> \
                <strong>\(action)</strong> <span class="muted">\(facts.joined(separator: " · "))</span>\
                \(try text("error").map { "<br>\($0)" as HTML } ?? .empty)</li>
                """
        }
        let list: HTML = items.isEmpty ? "<p>No attempts yet.</p>" : "<ol class=\"timeline\" id=\"attempts\">\(items)</ol>"
        return "<section aria-labelledby=\"attempts-heading\"><h2 id=\"attempts-heading\">Attempts</h2>\(list)</section>"
    }

    static func webhooks(_ outcomes: PGResult) throws -> HTML {
        let rows = try outcomes.rows.map { row -> HTML in
            func text(_ column: String) throws -> String? { try row.decode(column, as: String?.self) }
            return """
                <tr><td>\(MerchantsLinks.time(try row.decode("received_at", as: Date.self)))</td><td>\(try text("source"))</td>
                <td>\(try text("fc_event"))</td><td>\(try text("decision") ?? "—")</td><td>\(try text("fc_order_id") ?? "—")</td>
                <td>\(try text("environment") ?? "—")</td><td class="num">\(try row.decode("deliveries", as: Int.self))</td></tr>
                """
        }
        let table: HTML = rows.isEmpty
            ? "<p>No webhook or final lookup recorded for this event.</p>"
            : """
              <div class="table-wrap"><table id="webhooks"><thead><tr><th scope="col">Received (UTC)</th><th scope="col">Source</th>
              <th scope="col">FlexCharge event</th><th scope="col">Decision</th><th scope="col">FlexCharge order</th>
              <th scope="col">Environment</th><th scope="col" class="num">Deliveries</th></tr></thead>
              <tbody>\(rows)</tbody></table></div>
              """
        return "<section aria-labelledby=\"webhooks-heading\"><h2 id=\"webhooks-heading\">Outcome and webhooks</h2>\(table)</section>"
    }
}
