import Foundation

/// What happened to one claimed event: its new state and the attempt-ledger row, written
/// together (in batches) by ``OutboxStore/record(_:worker:)``.
struct Completion: Sendable {
    enum Outcome: Sendable, Equatable {
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

    var eventID: Int64
    var attempt: Int
    var action: ClaimedEvent.NextAction
    var environment: String
    var startedAt: Date
    var finishedAt: Date
    var httpStatus: Int?
    /// `nil` on success; else retryable, permanent, ambiguous, config.
    var failureClass: String?
    var error: String?
    var outcome: Outcome
    var transactionKey: String?
    var orderSessionKey: String?
    var decision: String?
    /// FlexCharge's validation errors as a JSON object text.
    var fieldErrors: String?

    var latencyMilliseconds: Double { finishedAt.timeIntervalSince(startedAt) * 1000 }
}
