import Foundation
import Hummingbird
import OutboxEngine

/// Retry and skip of one event (operators), with a required reason: `OperatorActions`, the CLI's
/// `retry` and `skip`, with the workers' retry policy and the signed-in user as the actor, so the
/// action and its reason land in the event's attempt ledger under `console:<user>`.
enum EventsActions {
    static func register(_ routes: ConsoleRoutes) {
        routes.post("/events/:event/retry", role: .operator) { _, context in
            let id = try EventsDetail.eventParameter(context)
            let reason = try context.form.required("reason", label: "A reason")
            let actor = try context.actor
            let action = try await act {
                try await routes.services.withSession { session in
                    try await OperatorActions(session: session, actor: actor, retryPolicy: routes.services.retryPolicy).retry(id, reason: reason)
                }
            }
            return ConsoleRedirect(to: "/events/\(id)", notice: "Event \(id) requeued (\(action) first).")
        }
        routes.post("/events/:event/skip", role: .operator) { _, context in
            let id = try EventsDetail.eventParameter(context)
            let reason = try context.form.required("reason", label: "A reason")
            let actor = try context.actor
            try await act {
                try await routes.services.withSession { session in
                    try await OperatorActions(session: session, actor: actor).skip(id, reason: reason)
                }
            }
            return ConsoleRedirect(to: "/events/\(id)", notice: "Event \(id) skipped.")
        }
    }

    /// Runs an operator action; its refusal (unknown event, wrong state) becomes a 409 page.
    @discardableResult
    private static func act<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await ConsoleError.refusing(as: .conflict, body)
    }
}
