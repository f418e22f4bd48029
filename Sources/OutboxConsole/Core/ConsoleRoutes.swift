import Hummingbird

/// Where an area adds its routes (see ``ConsoleArea``). Every route here needs a signed-in user
/// (others are sent to the sign-in page). `get` is open to viewers unless it names a role; `post` must
/// name the role it needs, and its form's CSRF token is checked before the handler runs (the parsed
/// fields are in `context.form`). A ``ConsoleError`` thrown by a handler becomes an error page in the
/// layout.
public struct ConsoleRoutes: Sendable {
    let group: RouterGroup<ConsoleRequestContext>
    public let services: ConsoleServices
    let configuration: ConsoleConfiguration

    /// A page that reads. `path` is a Hummingbird path (`/events/:id`; read `context.parameters.get("id")`).
    public func get<Output: ResponseGenerator>(
        _ path: RouterPath, role: ConsoleRole = .viewer,
        _ handler: @escaping @Sendable (Request, ConsoleRequestContext) async throws -> Output
    ) {
        group.get(path) { request, context -> Response in
            try await Self.run(request, context, role: role, handler)
        }
    }

    /// An action (a form's POST). The CSRF token was checked; `role` is required.
    public func post<Output: ResponseGenerator>(
        _ path: RouterPath, role: ConsoleRole,
        _ handler: @escaping @Sendable (Request, ConsoleRequestContext) async throws -> Output
    ) {
        group.post(path) { request, context -> Response in
            try await Self.run(request, context, role: role, handler)
        }
    }

    private static func run<Output: ResponseGenerator>(
        _ request: Request, _ context: ConsoleRequestContext, role: ConsoleRole,
        _ handler: @Sendable (Request, ConsoleRequestContext) async throws -> Output
    ) async throws -> Response {
        do {
            try context.requireRole(role)
            return try await handler(request, context).response(from: request, context: context)
        } catch let error as ConsoleError {
            return try ConsolePage.error(error).response(from: request, context: context)
        }
    }
}
