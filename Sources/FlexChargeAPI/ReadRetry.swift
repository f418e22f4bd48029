/// The reads a lookup makes (`GET /orders` page by page, `GET /orders/{id}`) are tried again at once, up to
/// ``tries`` times in all, when they fail in a way another try may not: a 5xx or 408, a dropped connection, a
/// quick timeout. A read changes nothing at FlexCharge, so trying it again is always safe, and a lookup makes
/// several (one per guess and page): before, any one failed read failed the whole lookup, an attempt of the
/// event. In the full chaos run (about one call in five failing) that left 205 evaluates dead after their lookups
/// kept failing, of 355 dead events; with this, 27 were dead, 3 of them after failed lookups (all on 429s).
///
/// Not tried again: a 429 (FlexCharge asked for less traffic: the event's backoff honours its Retry-After), a
/// refusal (4xx), a cancelled task, or a read once ``budget`` has passed since the first try began: a read
/// that waited out its timeout (30 s by default) is not worth two more such waits, and an overloaded
/// FlexCharge is not asked twice as often.
public enum ReadRetry {
    /// Tries of one read, the first included.
    public static let tries = 3
    /// No further try once this long has passed since the first began.
    public static let budget: Duration = .seconds(5)
    /// The pause before each further try, drawn at random from this range (milliseconds).
    static let pauseMilliseconds = 50...250

    /// Runs `read`, trying it again as described above; throws the last failure.
    public static func run<T>(_ read: () async throws -> T) async throws -> T {
        try await run(budget: budget, read)
    }

    static func run<T>(budget: Duration, _ read: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        var tried = 1
        while true {
            do {
                return try await read()
            } catch let error as FlexChargeError
                where tried < tries && isWorthAnotherTry(error) && ContinuousClock.now - started < budget && !Task.isCancelled {
                tried += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: pauseMilliseconds)))
            }
        }
    }

    /// True for a failure another try of the same read may not meet.
    static func isWorthAnotherTry(_ error: FlexChargeError) -> Bool {
        error.failureClass != .permanent && error.httpStatus != 429
    }
}
