import Foundation
import LibPQ

extension OperatorActions {
    /// Requeues a merchant's events skipped because their channel was off (`last_error_class`
    /// `config`, set by `claim()`), skipped at or after `since`, optionally of one channel
    /// (`mit`, `cit_website`, `cit_call_center`). Only events whose channel routes somewhere now are
    /// requeued; the others are refused with the reason (they would be skipped again). Events an
    /// operator skipped by hand are not touched.
    ///
    /// Each goes through `retry`'s rule (``requeue(_:from:refusal:verb:)``): an event never claimed
    /// (the usual case: the channel was off when first claimed) is sent; one that may have reached
    /// FlexCharge before it was skipped is looked up first, and an evaluate first sent longer ago
    /// than the idempotency window is requeued as a lookup only, never sent.
    public func replaySkipped(merchant: String, since: Date, channel: String? = nil)
        async throws -> (requeued: [(Int64, String)], refused: [(Int64, String)])
    {
        if let channel, !PauseScope.channels.contains(channel) {
            throw OperatorError("channel must be one of \(PauseScope.channels.joined(separator: ", ")), not \(channel)")
        }
        let rows = try await session.query(
            """
            SELECT id, flexcharge.route(merchant_id, site, channel, origin, is_test) AS environment
              FROM flexcharge.outbox
             WHERE merchant_id = $1 AND state = 'skipped' AND last_error_class = 'config' AND completed_at >= $2
               AND ($3::text IS NULL OR $3 = flexcharge.switch_of(channel, origin))
             ORDER BY id
            """, [merchant, since, channel]).rows
        var requeued: [(Int64, String)] = [], refused: [(Int64, String)] = []
        for row in rows {
            let id: Int64 = try row.decode("id")
            guard try row.decode("environment", as: String.self) != "off" else {
                refused.append((id, "its channel is still off for merchant \(merchant): switch it on first"))
                continue
            }
            do {
                let action = try await requeue(id, from: ["skipped"], refusal: "only skipped events can be replayed", verb: "replayed")
                requeued.append((id, action))
            } catch let error as OperatorError {
                refused.append((id, error.description))
            }
        }
        return (requeued, refused)
    }
}
