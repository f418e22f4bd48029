/// What a console account may do. Each role includes the ones below it:
/// - `viewer` reads every page (no payload secrets, no credential values: nothing shows those);
/// - `operator` also retries, skips, pauses and resumes events (the CLI's operator actions);
/// - `admin` also changes merchant switches and credentials, and manages console accounts.
public enum ConsoleRole: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case viewer, `operator`, admin

    public var description: String { rawValue }

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: ConsoleRole, rhs: ConsoleRole) -> Bool { lhs.rank < rhs.rank }

    /// True when this role may do what `required` may.
    public func includes(_ required: ConsoleRole) -> Bool { self >= required }
}

/// The signed-in user of a request.
public struct ConsoleUser: Sendable, Equatable {
    public let id: Int64
    public let name: String
    public let role: ConsoleRole

    public init(id: Int64, name: String, role: ConsoleRole) {
        self.id = id
        self.name = name
        self.role = role
    }

    /// The name written to the audit trail (merchant_audit.actor, attempts.worker) for what this user
    /// does through the console: `console:<name>`, so a row says who and through what.
    public var actor: String { "console:\(name)" }
}
