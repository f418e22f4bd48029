import Foundation
import LibPQ

/// What a pause holds back: one merchant or all, one channel or all, one environment or all.
/// Everything `nil` is the whole queue. Stored in `flexcharge.pauses` (migrations/0019_pause.sql),
/// where `claim()` reads it: a paused event stays pending, untouched, until the pause is resumed.
public struct PauseScope: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The merchant's switch names: `mit`, `cit_website`, `cit_call_center`.
    public static let channels = ["mit", "cit_website", "cit_call_center"]
    public static let environments = ["sandbox", "production"]

    public let merchantID: String?
    public let channel: String?
    public let environment: String?

    /// Refuses a channel or environment the table would refuse, naming the allowed values.
    public init(merchantID: String? = nil, channel: String? = nil, environment: String? = nil) throws {
        if let channel, !Self.channels.contains(channel) {
            throw OperatorError("channel must be one of \(Self.channels.joined(separator: ", ")), not \(channel)")
        }
        if let environment, !Self.environments.contains(environment) {
            throw OperatorError("environment must be one of \(Self.environments.joined(separator: ", ")), not \(environment)")
        }
        if let merchantID, merchantID.trimmingCharacters(in: .whitespaces).isEmpty { throw OperatorError("merchant must not be empty") }
        self.merchantID = merchantID
        self.channel = channel
        self.environment = environment
    }

    public static let wholeQueue = try! PauseScope()

    /// `the whole queue`, `merchant m1, channel mit, production`.
    public var description: String {
        guard merchantID != nil || channel != nil || environment != nil else { return "the whole queue" }
        return [merchantID.map { "merchant \($0)" } ?? "every merchant", channel.map { "channel \($0)" }, environment]
            .compactMap { $0 }.joined(separator: ", ")
    }
}

/// One pause and, once resumed, its resume: the audit of who held what back, when and why.
public struct Pause: Sendable, Codable {
    public let id: Int64
    public let scope: PauseScope
    public let reason: String
    public let pausedBy: String
    public let pausedAt: Date
    public let resumedBy: String?
    public let resumedAt: Date?
    public let resumeReason: String?
    /// Pending events this pause holds back now (nil for a resumed pause or when not counted).
    public var pendingEvents: Int?
}

/// The operator's pauses: pause, resume, list. Resuming wakes the workers (NOTIFY), so the held
/// events go out at once.
public struct PauseBoard: Sendable {
    public let session: PGSession
    public let actor: String

    public init(session: PGSession, actor: String) {
        self.session = session
        self.actor = actor
    }

    /// Pauses a scope; refuses a scope that is already paused (naming who paused it and why).
    @discardableResult
    public func pause(_ scope: PauseScope, reason: String) async throws -> Pause {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw OperatorError("a pause needs a reason") }
        let inserted = try await session.query(
            """
            INSERT INTO flexcharge.pauses (merchant_id, channel, environment, reason, paused_by)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT ((coalesce(merchant_id, '')), (coalesce(channel, '')), (coalesce(environment, '')))
               WHERE resumed_at IS NULL DO NOTHING
            RETURNING \(Self.columns)
            """, [scope.merchantID, scope.channel, scope.environment, reason, actor]).first
        guard let inserted else {
            let existing = try await active().first { $0.scope == scope }
            throw OperatorError("\(scope) is already paused"
                + (existing.map { " (by \($0.pausedBy) at \($0.pausedAt.formatted(Date.ISO8601FormatStyle())): \($0.reason))" } ?? ""))
        }
        return try Self.pause(inserted)
    }

    /// Resumes the active pause of exactly this scope and wakes the workers; refuses when there is
    /// none (a narrower or wider pause is a different scope: `pauses` lists them).
    @discardableResult
    public func resume(_ scope: PauseScope, reason: String?) async throws -> Pause {
        let actor = self.actor
        return try await session.withTransaction { tx in
            guard let row = try tx.query(
                """
                UPDATE flexcharge.pauses
                   SET resumed_by = $4, resumed_at = now(), resume_reason = $5
                 WHERE resumed_at IS NULL AND merchant_id IS NOT DISTINCT FROM $1
                   AND channel IS NOT DISTINCT FROM $2 AND environment IS NOT DISTINCT FROM $3
                RETURNING \(Self.columns)
                """, [scope.merchantID, scope.channel, scope.environment, actor, reason]).first
            else { throw OperatorError("\(scope) is not paused (see `flexcharge-outbox pauses`)") }
            // Delivered at commit; the most urgent lane wakes every worker's claim loop at once.
            try tx.execute("SELECT pg_notify('flexcharge_outbox', (SELECT min(lane)::text FROM flexcharge.lanes))")
            return try Self.pause(row)
        }
    }

    /// The active pauses, oldest first, each with the pending events it holds back.
    public func active() async throws -> [Pause] {
        try await session.query(
            """
            SELECT \(Self.columns),
                   (SELECT count(*) FROM flexcharge.outbox o
                     WHERE o.state = 'pending'
                       AND (p.merchant_id IS NULL OR o.merchant_id = p.merchant_id)
                       AND (p.channel IS NULL OR p.channel = flexcharge.switch_of(o.channel, o.origin))
                       AND (p.environment IS NULL
                            OR p.environment = flexcharge.route(o.merchant_id, o.site, o.channel, o.origin, o.is_test))
                   )::bigint AS pending_events
              FROM flexcharge.pauses p
             WHERE p.resumed_at IS NULL
             ORDER BY p.paused_at, p.id
            """).rows.map { row in
            var pause = try Self.pause(row)
            pause.pendingEvents = try row.decode("pending_events")
            return pause
        }
    }

    /// Every pause, active or resumed, newest first: the audit.
    public func history(limit: Int = 100) async throws -> [Pause] {
        try await session.query(
            "SELECT \(Self.columns) FROM flexcharge.pauses p ORDER BY p.paused_at DESC, p.id DESC LIMIT $1", [limit]
        ).rows.map(Self.pause)
    }

    private static let columns =
        "id, merchant_id, channel, environment, reason, paused_by, paused_at, resumed_by, resumed_at, resume_reason"

    private static func pause(_ row: PGRow) throws -> Pause {
        Pause(
            id: try row.decode("id"),
            scope: try PauseScope(merchantID: try row.decode("merchant_id"), channel: try row.decode("channel"),
                                  environment: try row.decode("environment")),
            reason: try row.decode("reason"), pausedBy: try row.decode("paused_by"), pausedAt: try row.decode("paused_at"),
            resumedBy: try row.decode("resumed_by"), resumedAt: try row.decode("resumed_at"),
            resumeReason: try row.decode("resume_reason"), pendingEvents: nil)
    }
}
