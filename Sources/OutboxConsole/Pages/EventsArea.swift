import Foundation
import Hummingbird
import LibPQ
import OutboxEngine

/// The Events pages: a search by merchant, order, kind, state, decision and time (newest first, a
/// bounded page, `EventQueries.search` as `events list` uses it), one event's page
/// (``EventsDetail``), and the operators' retry and skip (``EventsActions``).
enum EventsArea: ConsoleArea {
    static let navigation: ConsoleNavigation? = ConsoleNavigation(
        title: "Events", path: "/events", order: 20, summary: "Search events; payload (card data masked), attempts, webhooks; retry or skip")

    /// Page sizes offered; the first is the default.
    static let pageSizes = [50, 100, 200]

    static func register(_ routes: ConsoleRoutes) {
        routes.get("/events") { request, context in
            let fields = FormFields(urlEncoded: request.uri.query ?? "")
            let search = Search(fields)
            var results: PGResult?
            var problem = search.problem
            if problem == nil, let filter = search.filter {
                do {
                    results = try await routes.services.withSession { try await EventQueries(session: $0).search(filter) }
                } catch let error as OperatorError {
                    problem = error.description
                }
            }
            return ConsolePage(title: "Events", body: try page(search, results: results, problem: problem), stylesheets: ["merchants-events.css"])
        }
        EventsDetail.register(routes)
        EventsActions.register(routes)
    }

    /// The search form's fields, as given.
    struct Search {
        var fields: FormFields
        var filter: EventFilter?
        var problem: String?

        init(_ fields: FormFields) {
            self.fields = fields
            func value(_ name: String) -> String? {
                let text = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines)
                return text?.isEmpty == false ? text : nil
            }
            var filter = EventFilter(merchant: value("merchant"), order: value("order"), state: value("state"), kind: value("kind"),
                                     decision: value("decision"), limit: EventsArea.pageSizes[0])
            if let text = value("limit") {
                guard let limit = Int(text), EventsArea.pageSizes.contains(limit) else {
                    problem = "Page size must be one of \(EventsArea.pageSizes.map(String.init).joined(separator: ", "))."
                    return
                }
                filter.limit = limit
            }
            if let text = value("before") {
                guard let before = Int64(text), before > 0 else { problem = "before must be an event id."; return }
                filter.beforeID = before
            }
            for (name, label) in [("since", "From"), ("until", "To")] {
                guard let text = value(name) else { continue }
                guard let date = EventsArea.time(text) else {
                    problem = "\(label) must be a time like 2026-11-26T08:00 (UTC) or a date like 2026-11-26."
                    return
                }
                if name == "since" { filter.since = date } else { filter.until = date }
            }
            if let problem = filter.problem {
                self.problem = problem.prefix(1).uppercased() + problem.dropFirst() + "."
                return
            }
            self.filter = filter
        }
    }

    /// A time from the form: `2026-11-26T08:00` (a `datetime-local` field, read as UTC), with seconds,
    /// a full ISO-8601 time with its zone, or a date (midnight UTC).
    static func time(_ text: String) -> Date? {
        if let date = ISO8601DateFormatter().date(from: text) { return date }
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static func page(_ search: Search, results: PGResult?, problem: String?) throws -> HTML {
        let fields = search.fields
        func select(_ name: String, _ label: String, _ values: [String], any: String) -> HTML {
            let options = HTML(values.map { value -> HTML in
                "<option value=\"\(value)\"\(fields[name] == value ? HTML(" selected") : .empty)>\(value)</option>"
            })
            return """
                <div><label for="search-\(name)">\(label)</label><select id="search-\(name)" name="\(name)">
                <option value="">\(any)</option>\(options)</select></div>
                """
        }
        func text(_ name: String, _ label: String, type: String = "text", hint: String? = nil) -> HTML {
            let described: HTML = hint != nil ? " aria-describedby=\"search-\(name)-hint\"" : .empty
            let hintHTML: HTML = hint.map { "<small id=\"search-\(name)-hint\" class=\"muted\">\($0)</small>" } ?? .empty
            return """
                <div><label for="search-\(name)">\(label)</label>
                <input type="\(type)" id="search-\(name)" name="\(name)" value="\(fields[name])"\(described)>\(hintHTML)</div>
                """
        }
        let sizes = HTML(pageSizes.map { size -> HTML in
            "<option value=\"\(size)\"\((fields["limit"] ?? String(pageSizes[0])) == String(size) ? HTML(" selected") : .empty)>\(size)</option>"
        })
        let form: HTML = """
            <form method="get" action="/events" role="search" aria-label="Search events" id="event-search"><div class="form-grid">
            \(text("merchant", "Merchant id"))\(text("order", "Order id"))
            \(select("kind", "Kind", EventFilter.kinds, any: "any kind"))\(select("state", "State", EventFilter.states, any: "any state"))
            \(select("decision", "Decision", EventFilter.decisions, any: "any decision"))
            \(text("since", "Created from (UTC)", type: "datetime-local", hint: "at or after"))
            \(text("until", "Created to (UTC)", type: "datetime-local", hint: "before"))
            <div><label for="search-limit">Page size</label><select id="search-limit" name="limit">\(sizes)</select></div>
            </div><div class="actions"><button type="submit" class="primary">Search</button><a class="button" href="/events">Clear</a></div></form>
            """
        if let problem {
            return form + "<p class=\"error\" role=\"alert\">\(problem)</p>"
        }
        guard let results, let filter = search.filter else { return form }
        return form + (try table(results, filter: filter, fields: fields))
    }

    static func table(_ results: PGResult, filter: EventFilter, fields: FormFields) throws -> HTML {
        guard !results.rows.isEmpty else { return "<p id=\"event-count\">No events match.</p>" }
        let rows = try results.rows.map { row -> HTML in
            let id: Int64 = try row.decode("id")
            let merchant: String = try row.decode("merchant_id")
            let order: String = try row.decode("order_id")
            let state: String = try row.decode("state")
            let origin: String? = try row.decode("origin")
            let channel: String = try row.decode("channel")
            let error: String? = try row.decode("last_error")
            return """
                <tr><th scope="row"><a href="/events/\(id)">\(id)</a></th><td>\(MerchantsLinks.time(try row.decode("created_at", as: Date.self)))</td>
                <td><a href="\(MerchantsLinks.merchant(merchant))">\(merchant)</a></td>
                <td><a href="\(MerchantsLinks.events(merchant: merchant, order: order))">\(order)</a></td>
                <td>\(try row.decode("kind", as: String.self))</td><td>\(channel)\(origin.map { " \($0)" } ?? "")</td>
                <td>\(EventsDetail.stateBadge(state))</td><td>\(try row.decode("decision", as: String?.self) ?? "")</td>
                <td class="num">\(try row.decode("attempts", as: Int.self))</td><td>\(error.map { String($0.prefix(120)) })</td></tr>
                """
        }
        var next: HTML = .empty
        if results.rows.count == filter.limit, let last = try results.rows.last?.decode("id", as: Int64.self) {
            let pairs = ["merchant", "order", "kind", "state", "decision", "since", "until", "limit"].map { ($0, fields[$0]) }
            next = "<p><a href=\"/events\(MerchantsLinks.query(pairs + [("before", String(last))]))\" rel=\"next\">Older events</a></p>"
        }
        return """
            <p id="event-count">\(results.rows.count) event(s), newest first.</p>
            <div class="table-wrap"><table id="events"><thead><tr><th scope="col">Event</th><th scope="col">Created (UTC)</th>
            <th scope="col">Merchant</th><th scope="col">Order</th><th scope="col">Kind</th><th scope="col">Channel</th>
            <th scope="col">State</th><th scope="col">Decision</th><th scope="col" class="num">Attempts</th><th scope="col">Last error</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>\(next)
            """
    }
}
