import Foundation
import Hummingbird

/// `/accounts` (admins): console accounts (role, password, TOTP, disabled), the "require TOTP" setting
/// and the console's audit (account changes, sign-ins). New accounts are added with the CLI
/// (`console user add`), which reads the password from stdin.
enum AccountsArea: ConsoleArea {
    static let navigation: ConsoleNavigation? = ConsoleNavigation(
        title: "Accounts", path: "/accounts", order: 90, summary: "Console accounts, roles, the TOTP requirement and sign-ins (admins).")

    static func register(_ routes: ConsoleRoutes) {
        routes.get("/accounts", role: .admin) { _, context in
            let (accounts, required, audit) = try await routes.services.withSession { session in
                let store = ConsoleAccounts(session: session, actor: "")
                return (try await store.list(), try await store.requireTOTP(), try await store.audit(limit: 50))
            }
            let rows = accounts.map { account -> HTML in
                let roles = HTML(ConsoleRole.allCases.map { role -> HTML in
                    "<option value=\"\(role.rawValue)\"\(role == account.role ? HTML(" selected") : "")>\(role.rawValue)</option>"
                })
                return """
                    <tr><th scope="row">\(account.name)</th>
                    <td><form method="post" action="/accounts/role" class="actions">\(HTML.csrfField(context))
                    <input type="hidden" name="name" value="\(account.name)">
                    <label class="visually-hidden" for="role-\(account.id)">Role of \(account.name)</label>
                    <select id="role-\(account.id)" name="role">\(roles)</select> <button type="submit">Change</button></form></td>
                    <td>\(account.hasPassword ? "set" : "SSO only")</td><td>\(account.hasTOTP ? "enrolled" : "none")</td>
                    <td>\(account.disabled ? "disabled" : "active")</td>
                    <td><form method="post" action="/accounts/\(account.disabled ? "enable" : "disable")">\(HTML.csrfField(context))
                    <input type="hidden" name="name" value="\(account.name)">
                    <button type="submit"\(account.disabled ? "" : HTML(" class=\"danger\""))>\(account.disabled ? "Enable" : "Disable")</button></form></td></tr>
                    """
            }
            let auditRows = audit.map { entry -> HTML in
                "<tr><td>\(ISO8601DateFormatter().string(from: entry.at))</td><td>\(entry.actor)</td><td>\(entry.action)</td><td>\(entry.subject)</td><td>\(entry.old ?? "")</td><td>\(entry.new ?? "")</td></tr>"
            }
            return ConsolePage(title: "Console accounts", body: """
                <h2>Second factor</h2>
                <form method="post" action="/accounts/require-totp" class="actions">\(HTML.csrfField(context))
                <input type="hidden" name="required" value="\(required ? "false" : "true")">
                <p>An authenticator code is \(required ? "required" : "not required") for every password sign-in
                \(required ? "" : "(accounts that enrolled one are always asked for it)").</p>
                <button type="submit">\(required ? "Stop requiring it" : "Require it for everyone")</button></form>
                <h2>Accounts</h2>
                <p class="muted">Add one with <code>flexcharge-outbox console user add NAME --role viewer|operator|admin</code> (password on stdin);
                enrol an authenticator with <code>flexcharge-outbox console user totp NAME</code>.</p>
                <div class="table-wrap" role="region" tabindex="0" aria-label="Console accounts"><table><caption class="visually-hidden">Console accounts</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Password</th><th scope="col">Authenticator</th><th scope="col">State</th><th scope="col">Action</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                <h2>Recent changes and sign-ins</h2>
                <div class="table-wrap" role="region" tabindex="0" aria-label="Recent changes and sign-ins"><table><thead><tr><th scope="col">At (UTC)</th><th scope="col">By</th><th scope="col">Action</th><th scope="col">Account</th><th scope="col">Was</th><th scope="col">Now</th></tr></thead>
                <tbody>\(auditRows)</tbody></table></div>
                """)
        }
        routes.post("/accounts/role", role: .admin) { _, context in
            let name = try context.form.required("name")
            guard let role = ConsoleRole(rawValue: try context.form.required("role")) else { throw ConsoleError.badRequest("Unknown role.") }
            let actor = try context.actor
            try await act { try await routes.services.withSession { try await ConsoleAccounts(session: $0, actor: actor).setRole(name, role: role) } }
            return ConsoleRedirect(to: "/accounts", notice: "\(name) is now \(role.rawValue).")
        }
        for (path, disable) in [("/accounts/disable", true), ("/accounts/enable", false)] {
            routes.post(RouterPath(path), role: .admin) { _, context in
                let name = try context.form.required("name")
                let actor = try context.actor
                let me = try context.signedIn.name
                guard !(disable && name == me) else { throw ConsoleError.badRequest("You cannot disable your own account.") }
                try await act { try await routes.services.withSession { try await ConsoleAccounts(session: $0, actor: actor).setDisabled(name, disable) } }
                return ConsoleRedirect(to: "/accounts", notice: "\(name) is \(disable ? "disabled" : "enabled").")
            }
        }
        routes.post("/accounts/require-totp", role: .admin) { _, context in
            let required = try context.form.required("required") == "true"
            let actor = try context.actor
            try await routes.services.withSession { try await ConsoleAccounts(session: $0, actor: actor).setRequireTOTP(required) }
            return ConsoleRedirect(to: "/accounts", notice: required ? "An authenticator code is now required." : "An authenticator code is no longer required.")
        }
    }

    /// Runs an account change; its refusal becomes a 400 page.
    private static func act(_ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as ConsoleAccountError { throw ConsoleError.badRequest(error.description) }
    }
}
