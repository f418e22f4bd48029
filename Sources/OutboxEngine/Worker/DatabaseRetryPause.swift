extension Backoff {
    /// How long a worker loop waits after `failures` database errors in a row (claiming, writing outcomes)
    /// before it tries again: 200 ms, doubling with each failure, at most `cap`. No jitter: it is one loop per
    /// worker, not many clients to spread. The formula is ``Backoff/ceiling(afterAttempt:)``'s.
    static func databaseRetryPause(afterFailures failures: Int, cap: Duration) -> Duration {
        Backoff(base: .milliseconds(200), cap: cap).ceiling(afterAttempt: failures)
    }
}
