import Foundation

/// What happened to one claimed event: its new state and the attempt-ledger row, written
/// together (in batches) by ``OutboxStore/record(_:worker:)``.
public struct Completion: Sendable {
    public enum Outcome: Sendable, Equatable {
        case succeeded
        /// Evaluate answered SUBMITTED / CHALLENGE / CAPTUREREQUIRED.
        case awaitingOutcome
        /// FlexCharge refused it for good.
        case failed
        /// Attempts exhausted, or an evaluate that cannot be resolved safely.
        case dead
        /// Try again at the given time, sending or looking up first.
        case retry(at: Date, action: ClaimedEvent.NextAction)

        var state: String {
            switch self {
            case .succeeded: "succeeded"
            case .awaitingOutcome: "awaiting_outcome"
            case .failed: "failed"
            case .dead: "dead"
            case .retry: "pending"
            }
        }
    }

    public var eventID: Int64
    public var attempt: Int
    public var action: ClaimedEvent.NextAction
    public var environment: String
    public var startedAt: Date
    public var finishedAt: Date
    public var httpStatus: Int?
    /// `nil` on success; else retryable, permanent, ambiguous, config.
    public var failureClass: String?
    public var error: String?
    public var outcome: Outcome
    public var transactionKey: String?
    public var orderSessionKey: String?
    public var decision: String?
    /// FlexCharge's validation errors as a JSON object text.
    public var fieldErrors: String?

    public var latencyMilliseconds: Double { finishedAt.timeIntervalSince(startedAt) * 1000 }
}
