import Foundation

/// Remembered idempotency keys: same key + same body replays the stored answer byte-for-byte, a different body
/// or a still-running first request gives 409; keys are forgotten after the window (sandbox clock).
struct IdempotencyStore: Sendable {
    /// What to do with an incoming keyed request.
    enum Check {
        case proceed
        case answer(SandboxReply)
    }

    private struct Record {
        var body: [UInt8]
        var createdAt: Date
        var reply: SandboxReply?
    }

    private var records: [String: Record] = [:]

    /// Registers `scope` (route + mid + key) as in progress, or answers from a live record.
    mutating func begin(scope: String, body: [UInt8], now: Date, window: TimeInterval) -> Check {
        if let record = records[scope], now.timeIntervalSince(record.createdAt) < window {
            guard record.body == body else {
                return .answer(.problem(409, "Idempotency key reused with a different payload"))
            }
            guard var stored = record.reply else {
                return .answer(.problem(409, "A request with the same idempotency key is still in progress"))
            }
            stored.ledgerStatus = "REPLAYED"
            return .answer(stored)
        }
        records[scope] = Record(body: body, createdAt: now)
        return .proceed
    }

    /// Stores the answer of a request registered with ``begin(scope:body:now:window:)``.
    mutating func finish(scope: String, reply: SandboxReply) {
        records[scope]?.reply = reply
    }
}
