/// The sandbox's deterministic decision rules, all in one place (documented in `--help` and docs/sandbox.md).
///
/// CIT (`isMIT: false`), first matching rule wins:
/// 1. `transactionType: AUTHORIZATION` (any case) → `CAPTUREREQUIRED`.
/// 2. Card `4000300011112220`, or payer email containing `decline` → `DECLINED`.
/// 3. Card `4000002760003184`, or payer email containing `approve` → `APPROVED`.
/// 4. Card `4111111111111111`: with `payer.phone` → `CHALLENGE`, without → `DECLINED`.
/// 5. Any other card: amount ending in `00` cents → `APPROVED`, otherwise `DECLINED`.
///
/// MIT (`isMIT: true`): managed accounts answer `SUBMITTED`; the order completes (charged) after the configured
/// delay, or expires at `expiryDateUtc` when the CIT rules would decline it or the configured outcome is `expire`.
/// Sync accounts answer the CIT decision at once (`CHALLENGE` counts as `DECLINED`). Re-sending `/evaluate` for
/// an existing MIT `orderId` returns that order's current state and never creates a second order.
enum DecisionRules {
    static let approveCard = "4000002760003184"
    static let declineCard = "4000300011112220"
    static let challengeCard = "4111111111111111"
    /// PANs `/tokenize` accepts in the sandbox.
    static let whitelistedCards: Set<String> = [approveCard, declineCard, challengeCard, "4242424242424242"]

    /// The inputs a decision depends on.
    struct Inputs {
        var card: String?
        var email: String?
        var phone: String?
        var amountCents: Int
        var transactionType: String?
    }

    /// The immediate CIT decision.
    static func cit(_ inputs: Inputs) -> String {
        let email = inputs.email?.lowercased() ?? ""
        if inputs.transactionType?.uppercased() == "AUTHORIZATION" { return "CAPTUREREQUIRED" }
        if inputs.card == declineCard || email.contains("decline") { return "DECLINED" }
        if inputs.card == approveCard || email.contains("approve") { return "APPROVED" }
        if inputs.card == challengeCard { return inputs.phone == nil ? "DECLINED" : "CHALLENGE" }
        return inputs.amountCents % 100 == 0 ? "APPROVED" : "DECLINED"
    }

    /// The immediate sync-MIT decision.
    static func syncMIT(_ inputs: Inputs) -> String {
        cit(inputs) == "APPROVED" ? "APPROVED" : "DECLINED"
    }

    /// Whether a managed MIT order will eventually complete (otherwise it expires).
    static func managedMITCompletes(_ inputs: Inputs, outcome: ManagedMITOutcome) -> Bool {
        outcome == .complete && syncMIT(inputs) == "APPROVED"
    }
}
