import ArgumentParser
import OutboxEngine

/// `--idempotency-window-hours`: FlexCharge's idempotency window, which the worker and the
/// operator's `retry` must agree on (``RetryPolicy/idempotencyWindow``).
struct IdempotencyWindowOption: ParsableArguments {
    @Option(help: "FlexCharge's idempotency window in hours: an evaluate first sent longer ago is never sent again (give the worker and retry the same value).")
    var idempotencyWindowHours = RetryPolicy().idempotencyWindow / .seconds(3600)

    func validate() throws {
        guard idempotencyWindowHours > 0 else { throw ValidationError("--idempotency-window-hours must be positive") }
    }

    var idempotencyWindow: Duration { .milliseconds(Int64(idempotencyWindowHours * 3_600_000)) }
}

/// The worker's retry options: backoff, attempt limit and idempotency window, as one ``RetryPolicy``.
struct RetryPolicyOptions: ParsableArguments {
    @Option(help: "First retry delay ceiling in milliseconds (exponential backoff with full jitter).")
    var backoffBaseMs = Int(RetryPolicy().backoff.base / .milliseconds(1))

    @Option(help: "Longest retry delay in seconds.")
    var backoffCapSeconds = RetryPolicy().backoff.cap / .seconds(1)

    @Option(help: "Attempts before an event is dead.")
    var maxAttempts = RetryPolicy().maxAttempts

    @OptionGroup var window: IdempotencyWindowOption

    func validate() throws {
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be positive") }
    }

    var policy: RetryPolicy {
        RetryPolicy(
            backoff: Backoff(base: .milliseconds(backoffBaseMs), cap: .milliseconds(Int64(backoffCapSeconds * 1000))),
            maxAttempts: maxAttempts, idempotencyWindow: window.idempotencyWindow)
    }
}
