import Foundation
import OutboxEngine

/// The markup of the queue page. ``live(_:context:)`` is the part the page's script fetches again
/// every few seconds (`/queue/live`); the pause form stays outside it, so typing is never lost.
enum QueueView {
    /// The unfinished states the backlog chart stacks, and dead (finished, but someone must look).
    static let backlogStates = ["pending", "running", "awaiting_outcome", "dead"]
    static let refreshSeconds = 5

    static func page(_ snapshot: QueueSnapshot, context: ConsoleRequestContext, autoReload: Int?) -> HTML {
        """
        <p class="queue-live-bar">
        <span id="queue-live-status" class="muted">Read at \(time(snapshot.readAt)).</span>
        <button type="button" id="queue-live-toggle" aria-pressed="false" hidden>Pause live updates</button>
        <a href="/queue">Reload now</a>
        <noscript>\(autoReload == nil
            ? HTML("· <a href=\"/queue?reload=10\">Reload every 10 s</a> (without script)")
            : HTML("· Reloading every \(autoReload ?? 0) s. <a href=\"/queue\">Stop</a>"))</noscript>
        </p>
        <div id="queue-live" data-src="/queue/live" data-refresh-seconds="\(refreshSeconds)">
        \(live(snapshot, context: context))
        </div>
        \(context.may(.operator) ? pauseForm(context) : HTML("<p class=\"muted\">Pausing and resuming needs the operator role.</p>"))
        """
    }

    /// Health, totals, charts and tables: everything that changes while the page is open.
    static func live(_ snapshot: QueueSnapshot, context: ConsoleRequestContext) -> HTML {
        let status = snapshot.status
        let health: HTML = status.alerts.isEmpty
            ? "<p><span class=\"badge ok\" data-health=\"healthy\">healthy</span> No alert: the thresholds of <code>flexcharge-outbox status</code> hold.</p>"
            : "<ul class=\"queue-alerts\" data-health=\"alert\">\(status.alerts.map { HTML("<li class=\"error\">\($0)</li>") })</ul>"
        let totals = QueueStatus.states.map { state -> HTML in
            "<div><dt>\(state)</dt><dd data-total=\"\(state)\">\(status.totals[state] ?? 0)</dd></div>"
        }
        return """
            <section aria-labelledby="queue-health-h"><h2 id="queue-health-h">Health</h2>
            \(health)
            <dl class="figures">\(totals)</dl>
            </section>
            <section aria-labelledby="queue-charts-h"><h2 id="queue-charts-h">Backlog and throughput</h2>
            <div class="chart-grid">
            \(ChartRenderer.html(backlogChart(snapshot)))
            \(ChartRenderer.html(throughputChart(snapshot)))
            \(ChartRenderer.html(oldestChart(snapshot)))
            \(ChartRenderer.html(retryChart(snapshot)))
            </div>
            \(lanesTable(status))
            </section>
            \(workers(snapshot))
            \(breakers(status))
            \(pauses(status, context: context))
            \(rateLimits(snapshot))
            """
    }

    // MARK: Charts

    /// The count of `state` events in `lane` (0 when the view has no row).
    static func lane(_ status: QueueStatus, _ lane: String, _ state: String) -> QueueStatus.Lane? {
        status.lanes.first { $0.lane == lane && $0.state == state }
    }

    static func backlogChart(_ snapshot: QueueSnapshot) -> Chart {
        Chart(
            id: "chart-backlog", title: "Backlog per lane and state",
            summary: "Events not finished (and dead ones) per claim lane, most urgent lane first.", style: .stackedBars,
            labelAxis: "lane", valueAxis: "events", labels: snapshot.laneNames,
            series: backlogStates.map { state in
                ChartSeries(name: state, values: snapshot.laneNames.map { Double(lane(snapshot.status, $0, state)?.events ?? 0) })
            })
    }

    static func oldestChart(_ snapshot: QueueSnapshot) -> Chart {
        Chart(
            id: "chart-oldest", title: "Oldest pending event per lane",
            summary: "How long the oldest pending event of each lane has waited since it was written.", style: .groupedBars,
            labelAxis: "lane", valueAxis: "age", format: .seconds, labels: snapshot.laneNames,
            series: [ChartSeries(name: "oldest pending", values: snapshot.laneNames.map {
                lane(snapshot.status, $0, "pending")?.oldestAgeSeconds ?? 0
            })])
    }

    static func retryChart(_ snapshot: QueueSnapshot) -> Chart {
        let status = snapshot.status
        return Chart(
            id: "chart-retry", title: "Retry backlog per lane",
            summary: "Pending events that have failed at least once, and events whose next step is a lookup (FlexCharge asked before anything is sent again).",
            style: .groupedBars, labelAxis: "lane", valueAxis: "events", labels: snapshot.laneNames,
            series: [
                ChartSeries(name: "retrying", values: snapshot.laneNames.map { name in
                    Double(status.lanes.filter { $0.lane == name }.map(\.retrying).reduce(0, +))
                }),
                ChartSeries(name: "awaiting lookup", values: snapshot.laneNames.map { name in
                    Double(status.lanes.filter { $0.lane == name && $0.state != "dead" }.map(\.awaitingLookup).reduce(0, +))
                }),
            ])
    }

    static func throughputChart(_ snapshot: QueueSnapshot) -> Chart {
        Chart(
            id: "chart-throughput", title: "Calls to FlexCharge per minute, last hour",
            summary: "Sends and lookups that finished in each minute (UTC), answered or failed, from the attempt ledger; the last minute is still running.",
            style: .lines, labelAxis: "minute (UTC)", valueAxis: "calls", labels: snapshot.minutes.map { minute($0.start) },
            series: [
                ChartSeries(name: "answered", values: snapshot.minutes.map { Double($0.answered) }),
                ChartSeries(name: "failed", values: snapshot.minutes.map { Double($0.failed) }),
            ])
    }

    // MARK: Tables

    static func lanesTable(_ status: QueueStatus) -> HTML {
        let rows = status.lanes.map { lane -> HTML in
            """
            <tr data-lane="\(lane.lane)" data-state="\(lane.state)"><th scope="row">\(lane.lane)</th><td>\(lane.state)</td>\
            <td class="num" data-field="events">\(lane.events)</td>\
            <td class="num" data-field="oldest">\(lane.oldestAgeSeconds.map { String(format: "%.1f", $0) } ?? "-")</td>\
            <td class="num" data-field="retrying">\(lane.retrying)</td><td class="num" data-field="lookup">\(lane.awaitingLookup)</td></tr>
            """
        }
        return """
            <div class="table-wrap" role="region" tabindex="0" aria-label="Events per lane and state"><table id="queue-lanes"><caption>Events per lane and state (as <code>status</code> prints them)</caption>
            <thead><tr><th scope="col">lane</th><th scope="col">state</th><th scope="col" class="num">events</th>\
            <th scope="col" class="num">oldest (s)</th><th scope="col" class="num">retrying</th><th scope="col" class="num">awaiting lookup</th></tr></thead>
            <tbody>\(rows.isEmpty ? HTML("<tr><td colspan=\"6\">The queue is empty.</td></tr>") : HTML(rows))</tbody></table></div>
            """
    }

    static func workers(_ snapshot: QueueSnapshot) -> HTML {
        let rows = snapshot.workers.map { worker -> HTML in
            """
            <tr data-worker="\(worker.worker)"><th scope="row">\(worker.worker)</th><td class="num" data-field="leases">\(worker.leases)</td>\
            <td class="num" data-field="expired">\(worker.expired > 0 ? HTML("<span class=\"badge bad\">\(worker.expired)</span>") : "0")</td>\
            <td>\(worker.nextExpiry.map(time) ?? "-")</td></tr>
            """
        }
        return """
            <section aria-labelledby="queue-workers-h"><h2 id="queue-workers-h">Workers and their leases</h2>
            <p class="muted">A lease is an event a worker is sending now. Expired leases mean the worker stopped answering: the events go back to pending at the next rescue.</p>
            <div class="table-wrap" role="region" tabindex="0" aria-label="Leases per worker"><table id="queue-workers"><caption class="visually-hidden">Leases per worker</caption>
            <thead><tr><th scope="col">worker</th><th scope="col" class="num">leases</th><th scope="col" class="num">expired</th><th scope="col">next expiry</th></tr></thead>
            <tbody>\(rows.isEmpty ? HTML("<tr><td colspan=\"4\">No worker holds a lease.</td></tr>") : HTML(rows))</tbody></table></div>
            </section>
            """
    }

    static func breakers(_ status: QueueStatus) -> HTML {
        let counts = QueueStatus.breakerStates.map { state -> HTML in
            let count = status.breakerCounts[state] ?? 0
            let tone = state == "closed" || count == 0 ? "ok" : "bad"
            return "<li><span class=\"badge \(tone)\" data-breakers=\"\(state)\">\(state) \(count)</span></li>"
        }
        let rows = status.breakers.map { breaker -> HTML in
            """
            <tr><th scope="row">\(breaker.merchantId)</th><td>\(breaker.environment)</td>\
            <td><span class="badge \(breaker.state == "closed" ? "warn" : "bad")">\(breaker.state)</span></td>\
            <td class="num">\(breaker.failures)</td><td class="num">\(breaker.trips)</td><td>\(breaker.openedAt.map(time) ?? "-")</td>\
            <td>\(breaker.retryAt.map(time) ?? "-")</td><td class="num">\(breaker.pendingEvents)</td><td>\(breaker.lastError ?? "")</td></tr>
            """
        }
        let table: HTML = rows.isEmpty ? "<p>Every circuit breaker is closed and counting no failure.</p>" : """
            <div class="table-wrap" role="region" tabindex="0" aria-label="Circuit breakers"><table id="queue-breakers"><caption class="visually-hidden">Circuit breakers that are open, probing or counting failures</caption>
            <thead><tr><th scope="col">merchant</th><th scope="col">environment</th><th scope="col">state</th><th scope="col" class="num">failures</th>\
            <th scope="col" class="num">trips</th><th scope="col">open since</th><th scope="col">next probe</th><th scope="col" class="num">events held</th>\
            <th scope="col">last error</th></tr></thead><tbody>\(rows)</tbody></table></div>
            """
        return """
            <section aria-labelledby="queue-breakers-h"><h2 id="queue-breakers-h">Circuit breakers</h2>
            <ul class="queue-badges">\(counts)</ul>
            \(table)
            </section>
            """
    }

    static func pauses(_ status: QueueStatus, context: ConsoleRequestContext) -> HTML {
        let operatorMay = context.may(.operator)
        let rows = status.pauses.map { pause -> HTML in
            let scope = pause.scope
            let resume: HTML = operatorMay ? """
                <form method="post" action="/queue/resume" data-action="resume" class="queue-resume">\(HTML.csrfField(context))\
                <input type="hidden" name="merchant" value="\(scope.merchantID)"><input type="hidden" name="channel" value="\(scope.channel)">\
                <input type="hidden" name="environment" value="\(scope.environment)">\
                <label for="resume-reason-\(pause.id)" class="visually-hidden">Why resume \(scope.description)</label>\
                <input type="text" id="resume-reason-\(pause.id)" name="reason" placeholder="why (optional)">\
                <button type="submit">Resume</button></form>
                """ : ""
            return """
                <tr data-pause="\(pause.id)"><th scope="row">\(scope.merchantID ?? "every merchant")</th><td>\(scope.channel ?? "all")</td>\
                <td>\(scope.environment ?? "both")</td><td>\(pause.pausedBy)</td><td>\(time(pause.pausedAt))</td><td>\(pause.reason)</td>\
                <td class="num" data-field="held">\(pause.pendingEvents.map(String.init) ?? "-")</td>\(operatorMay ? HTML("<td>\(resume)</td>") : "")</tr>
                """
        }
        let table: HTML = rows.isEmpty ? "<p data-pauses=\"none\">Nothing is paused.</p>" : """
            <div class="table-wrap" role="region" tabindex="0" aria-label="Active pauses"><table id="queue-pauses"><caption class="visually-hidden">Active pauses</caption>
            <thead><tr><th scope="col">merchant</th><th scope="col">channel</th><th scope="col">environment</th><th scope="col">paused by</th>\
            <th scope="col">since</th><th scope="col">reason</th><th scope="col" class="num">events held</th>\(operatorMay ? HTML("<th scope=\"col\">resume</th>") : "")</tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
        return """
            <section aria-labelledby="queue-pauses-h"><h2 id="queue-pauses-h">Pauses</h2>
            <p class="muted">Paused events stay pending, with no attempt spent, until resumed (<code>flexcharge-outbox pauses</code>).</p>
            \(table)
            </section>
            """
    }

    static func rateLimits(_ snapshot: QueueSnapshot) -> HTML {
        let rows = snapshot.rateLimits.map { limit -> HTML in
            """
            <tr><th scope="row">\(limit.merchantID)</th><td class="num">\(limit.perSecond)/s</td><td class="num">\(limit.burst)</td>\
            <td>\(limit.environment ?? "no call yet")</td><td class="num">\(limit.tokens.map { String(format: "%.1f", $0) } ?? "-")</td>\
            <td class="num">\(limit.held)</td></tr>
            """
        }
        let table: HTML = rows.isEmpty ? "<p>No merchant has a rate limit.</p>" : """
            <div class="table-wrap" role="region" tabindex="0" aria-label="Rate limits"><table id="queue-rate-limits"><caption class="visually-hidden">Rate limits toward FlexCharge</caption>
            <thead><tr><th scope="col">merchant</th><th scope="col" class="num">limit</th><th scope="col" class="num">burst</th>\
            <th scope="col">environment</th><th scope="col" class="num">tokens now</th><th scope="col" class="num">events waiting for a token</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
        return """
            <section aria-labelledby="queue-rate-h"><h2 id="queue-rate-h">Rate limits</h2>
            <p class="muted">Calls a second toward FlexCharge per merchant and environment, shared by every worker (<code>merchant set --rate-limit</code>).</p>
            \(table)
            </section>
            """
    }

    /// Pause a merchant, a channel, an environment or the whole queue (operators).
    static func pauseForm(_ context: ConsoleRequestContext) -> HTML {
        let channels = PauseScope.channels.map { HTML("<option value=\"\($0)\">\($0)</option>") }
        let environments = PauseScope.environments.map { HTML("<option value=\"\($0)\">\($0)</option>") }
        return """
            <section aria-labelledby="queue-pause-h"><h2 id="queue-pause-h">Pause</h2>
            <p class="muted">Holds back new sends of what you name (events already being sent finish). Leave a field empty for all; \
            with every field empty the whole queue is paused, which you must confirm.</p>
            <form method="post" action="/queue/pause" data-action="pause" id="queue-pause-form">\(HTML.csrfField(context))
            <div class="form-grid">
            <div><label for="pause-merchant">Merchant</label><input type="text" id="pause-merchant" name="merchant" autocomplete="off"></div>
            <div><label for="pause-channel">Channel</label><select id="pause-channel" name="channel"><option value="">all channels</option>\(channels)</select></div>
            <div><label for="pause-environment">Environment</label><select id="pause-environment" name="environment"><option value="">both</option>\(environments)</select></div>
            <div><label for="pause-reason">Reason (kept in the audit)</label><input type="text" id="pause-reason" name="reason" required></div>
            </div>
            <p><input type="checkbox" id="pause-all" name="all" value="yes"> <label for="pause-all" class="inline">Yes, pause the whole queue (only when every field above is empty)</label></p>
            <div class="actions"><button type="submit" class="danger">Pause</button></div>
            </form>
            </section>
            """
    }

    // MARK: Text

    static func time(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }

    /// `20:05` (UTC).
    static func minute(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) % 86400
        return String(format: "%02d:%02d", seconds / 3600, seconds % 3600 / 60)
    }
}
