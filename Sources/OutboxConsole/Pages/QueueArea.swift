import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OutboxEngine

/// `/queue`: the queue at a glance (``QueueSnapshot``: the numbers of `flexcharge-outbox status`
/// plus throughput, leases, breakers, pauses and rate limits) as charts and tables, refreshed live;
/// operators pause and resume here through ``PauseBoard``, as `flexcharge-outbox pause` does.
///
/// Live without a build step: `/static/queue-live.js` (``QueueAssets``) fetches `/queue/live`, the
/// page's changing part rendered by the server, every few seconds and swaps it in; it waits while
/// the keyboard is inside that part or the tab is hidden, and a button stops it (WCAG 2.2.2).
/// Without script the page offers a plain reload every 10 s.
enum QueueArea: ConsoleArea {
    static let navigation: ConsoleNavigation? = ConsoleNavigation(
        title: "Queue", path: "/queue", order: 30, summary: "Backlog, throughput, workers, breakers, pauses, rate limits: live")

    static var assets: [ConsoleAsset] { [QueueAssets.script, QueueAssets.stylesheet, ChartAssets.stylesheet] }

    static func register(_ routes: ConsoleRoutes) {
        routes.get("/queue") { request, context in
            let snapshot = try await routes.services.withSession { try await QueueSnapshot.read($0) }
            let reload = request.uri.queryParameters.get("reload").flatMap(Int.init).map { min(max($0, 5), 300) }
            return ConsolePage(
                title: "Queue", body: QueueView.page(snapshot, context: context, autoReload: reload),
                stylesheets: [ChartAssets.stylesheet.name, QueueAssets.stylesheet.name], scripts: [QueueAssets.script.name],
                refreshSeconds: reload)
        }
        routes.get("/queue/live") { _, context in
            let snapshot = try await routes.services.withSession { try await QueueSnapshot.read($0) }
            return QueueFragment(html: QueueView.live(snapshot, context: context))
        }
        routes.post("/queue/pause", role: .operator) { _, context in
            let form = context.form
            let scope = try scope(form)
            let reason = try form.required("reason", label: "Reason")
            if scope == .wholeQueue && form["all"] != "yes" {
                throw ConsoleError.badRequest("Name a merchant, channel or environment, or confirm that the whole queue is to be paused.")
            }
            if scope != .wholeQueue && form["all"] == "yes" {
                throw ConsoleError.badRequest("“The whole queue” was ticked with a merchant, channel or environment named: choose one.")
            }
            let actor = try context.actor
            let pause = try await ConsoleError.refusing {
                try await routes.services.withSession { try await PauseBoard(session: $0, actor: actor).pause(scope, reason: reason) }
            }
            routes.services.logger.info("paused", metadata: ["scope": "\(pause.scope)", "pause": "\(pause.id)", "actor": "\(actor)"])
            return ConsoleRedirect(to: "/queue", notice: "Paused \(pause.scope).")
        }
        routes.post("/queue/resume", role: .operator) { _, context in
            let scope = try scope(context.form)
            let reason = context.form["reason"].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            let actor = try context.actor
            let pause = try await ConsoleError.refusing {
                try await routes.services.withSession { try await PauseBoard(session: $0, actor: actor).resume(scope, reason: reason) }
            }
            routes.services.logger.info("resumed", metadata: ["scope": "\(pause.scope)", "pause": "\(pause.id)", "actor": "\(actor)"])
            return ConsoleRedirect(to: "/queue", notice: "Resumed \(pause.scope): its events go out now.")
        }
    }

    /// The scope a form names (empty fields: all), refused with the engine's words.
    static func scope(_ form: FormFields) throws -> PauseScope {
        let value = { (name: String) in form[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 } }
        return try ConsoleError.refusing {
            try PauseScope(merchantID: value("merchant"), channel: value("channel"), environment: value("environment"))
        }
    }
}

/// The live part of the queue page, without the layout: what `/static/queue-live.js` swaps in.
/// Marked with a header so the script can tell it from a sign-in page it was redirected to.
struct QueueFragment: ResponseGenerator {
    let html: HTML

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8", HTTPField.Name("X-Console-Fragment")!: "queue"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html.markup)))
    }
}
