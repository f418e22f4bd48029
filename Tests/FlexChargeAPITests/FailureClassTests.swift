@testable import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import NIOHTTP1
import Testing

/// Token handling and the classification of every kind of failure, against real faults of the simulator.
@Suite struct FailureClassTests {
    private func tokenRequests(_ h: SandboxHarness) -> Int {
        h.sandbox.ledger().requests.filter { $0.route == "POST /oauth2/token" }.count
    }

    @Test func tokenRenewedOnceAfterClockPassesTTL() async throws {
        try await SandboxHarness.with { h in
            let first = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials)
            #expect(!first.renewedToken)
            h.sandbox.advanceClock(by: .seconds(601))
            let second = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials)
            #expect(second.renewedToken)
            #expect(tokenRequests(h) == 2)
            #expect(h.sandbox.ledger().requests.filter { $0.httpStatus == 401 }.count == 1)
        }
    }

    @Test func singleFlightTokenUnder64ConcurrentCalls() async throws {
        try await SandboxHarness.with(configure: { $0.faults = [FaultRule(route: "POST /oauth2/token", kind: .latency,
                                                                        latencyMilliseconds: 200, count: 1)] }) { h in
            let failures = await withTaskGroup(of: FlexChargeError.FailureClass?.self) { group in
                for _ in 0..<64 {
                    group.addTask { await flexChargeError { _ = try await h.client.order(id: "missing", credentials: h.credentials) }?.failureClass }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(failures.count == 64)
            #expect(failures.allSatisfy { $0 == .permanent })
            #expect(tokenRequests(h) == 1)
            #expect(h.sandbox.ledger().requests.filter { $0.route == "GET /orders/{id}" }.count == 64)
        }
    }

    @Test func badCredentialsArePermanent() async throws {
        try await SandboxHarness.with { h in
            var wrong = h.credentials
            wrong.appSecret = "wrong"
            let error = try #require(await flexChargeError { _ = try await h.client.order(id: "x", credentials: wrong) })
            #expect(error.failureClass == .permanent)
            #expect(error.httpStatus == 400)
            #expect(error.route == "POST /oauth2/token")
        }
    }

    @Test func notFoundIsPermanent() async throws {
        try await SandboxHarness.with { h in
            let error = try #require(await flexChargeError { _ = try await h.client.order(id: "unknown", credentials: h.credentials) })
            #expect(error.failureClass == .permanent)
            #expect(error.httpStatus == 404)
            #expect(error.message == "Not Found")
        }
    }

    @Test(arguments: [500, 502, 503, 504, 408, 409])
    func injectedStatusesAreRetryable(status: Int) async throws {
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "POST /evaluate", kind: .status, status: status, count: 1)]
        }) { h in
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials) })
            #expect(error.failureClass == .retryable)
            #expect(error.httpStatus == status)
            #expect(h.sandbox.ledger().charges.isEmpty)
            #expect(try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials).body.status == "APPROVED")
        }
    }

    @Test func rateLimitSurfacesRetryAfter() async throws {
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "GET /orders", kind: .rateLimit, retryAfterSeconds: 7, count: 1)]
        }) { h in
            let error = try #require(await flexChargeError { _ = try await h.client.orders(query: .init(), credentials: h.credentials) })
            #expect(error.failureClass == .retryable)
            #expect(error.httpStatus == 429)
            #expect(error.retryAfter == .seconds(7))
        }
    }

    /// Connection-level faults on `/evaluate`: how the client classifies them and what the sandbox really did.
    @Test(arguments: [
        (FaultRule.Kind.resetAfterProcessing, FlexChargeError.FailureClass.ambiguous, nil, 1),
        // A reset once the request was sent may follow processing as well: the client cannot tell, so it asks.
        (.resetBeforeProcessing, .ambiguous, nil, 0),
        (.malformedBody, .ambiguous, 200, 1),
    ] as [(FaultRule.Kind, FlexChargeError.FailureClass, Int?, Int)])
    func evaluateFaultIsClassified(kind: FaultRule.Kind, expected: FlexChargeError.FailureClass, httpStatus: Int?, charges: Int) async throws {
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "POST /evaluate", kind: kind, count: 1)]
        }) { h in
            let error = try #require(await flexChargeError {
                _ = try await h.client.evaluate(h.evaluateRequest(orderId: "F-1"), credentials: h.credentials)
            })
            #expect(error.failureClass == expected, "\(error)")
            #expect(error.httpStatus == httpStatus)
            let ledger = h.sandbox.ledger()
            #expect(ledger.chargeCount(merchantOrderId: "F-1") == charges)
            #expect(ledger.requests.last?.processed == (charges == 1))
            #expect(ledger.requests.last?.fault == kind.rawValue)
        }
    }

    @Test func hangTimesOutAsAmbiguous() async throws {
        try await SandboxHarness.with(configure: {
            $0.faults = [FaultRule(route: "POST /evaluate", kind: .hang, count: 1)]
        }, requestTimeout: .milliseconds(1500)) { h in
            // 1.5 s, not less: on a loaded machine (the whole suite runs in parallel on two cores) a
            // shorter deadline could pass before the request is written, which is rightly retryable.
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(h.evaluateRequest(), credentials: h.credentials) })
            #expect(error.failureClass == .ambiguous, "\(error)")
        }
    }

    @Test func connectErrorIsRetryable() async throws {
        let client = FlexChargeClient(environment: .local(port: 1), configuration: .init(connectTimeout: .seconds(1)))
        let credentials = MerchantCredentials(mid: "m", appKey: "k", appSecret: "s")
        let error = try #require(await flexChargeError { _ = try await client.order(id: "x", credentials: credentials) })
        #expect(error.failureClass == .retryable)
        try await client.shutdown()
    }

    @Test(arguments: [ValidationErrorShape.flat, .nested])
    func validationErrorsArePermanentWithFieldErrors(shape: ValidationErrorShape) async throws {
        try await SandboxHarness.with(configure: { $0.validationErrorShape = shape }) { h in
            let body = try h.evaluateBody(h.evaluateRequest()) { $0["orderId"] = nil }
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(body: body, credentials: h.credentials) })
            #expect(error.failureClass == .permanent)
            #expect(error.httpStatus == 400)
            #expect(error.fieldErrors == ["OrderId": ["Merchant's orderId is required"]])
        }
    }

    @Test func differentMidIsForbidden() async throws {
        try await SandboxHarness.with { h in
            let body = try h.evaluateBody(h.evaluateRequest()) { $0["mid"] = SandboxHarness.syncMerchant.mid }
            let error = try #require(await flexChargeError { _ = try await h.client.evaluate(body: body, credentials: h.credentials) })
            #expect(error.failureClass == .permanent)
            #expect(error.httpStatus == 403)
        }
    }

    // MARK: Bounds on what a response may impose

    /// Every form of the header: seconds, HTTP-date, and values that must be ignored or capped.
    @Test(arguments: [
        ("7", Duration.seconds(7), false),
        (" 0 ", .zero, false),
        ("3600", .seconds(3600), false),
        ("3601", RetryAfter.maximum, true),
        ("99999999999999", RetryAfter.maximum, true),
        ("99999999999999999999999999999999999999", RetryAfter.maximum, true),
        ("Sun, 06 Nov 1994 08:49:37 GMT", .zero, false),
        ("Fri, 31 Dec 9999 23:59:59 GMT", RetryAfter.maximum, true),
    ] as [(String, Duration, Bool)])
    func retryAfterIsBounded(value: String, expected: Duration, noted: Bool) {
        let reading = RetryAfter.read(value)
        #expect(reading.delay == expected)
        #expect((reading.note != nil) == noted, "\(reading)")
        #expect(expected <= RetryAfter.maximum)
    }

    @Test(arguments: ["-5", "NaN", "inf", "1e308", "-0", "1.5", "soon", "", "5, 6", "\u{0}12", "12\nX-Forged: 1"])
    func unusableRetryAfterIsIgnored(value: String) {
        let reading = RetryAfter.read(value)
        #expect(reading.delay == nil)
        #expect(reading.note?.contains("ignored") == true)
        #expect(reading.note?.contains("\n") != true, "a note never carries a raw line break")
    }

    @Test func httpDateRetryAfterIsMeasuredFromNow() {
        let now = Date(timeIntervalSince1970: 784_111_717)  // Sun, 06 Nov 1994 08:48:37 GMT
        #expect(RetryAfter.read("Sun, 06 Nov 1994 08:49:37 GMT", now: now).delay == .seconds(60))
    }

    /// A 429 asking for ~3 million years: capped, and the reason is in the error's message.
    @Test func hugeRetryAfterIsCappedWithAReason() throws {
        let reply = HTTPExchange.Reply(status: 429, headers: ["Retry-After": "99999999999999"], body: [], latency: .zero)
        let error = try #require(throwsFlexChargeError { let _: FlexChargeResponse<OrdersPage> = try FlexChargeClient.decode(reply, route: "GET /orders", renewedToken: false) })
        #expect(error.retryAfter == RetryAfter.maximum)
        #expect(error.failureClass == .retryable)
        #expect(error.message.contains("capped at 3600 s"), "\(error.message)")
    }

    @Test func tokenExpiryIsBounded() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let ms = { (date: Date) in Int64(date.timeIntervalSince1970 * 1000) }
        #expect(AccessTokenCache.boundedExpiry(millisecondsSince1970: ms(now) + 600_000, now: now) == now.addingTimeInterval(600))
        #expect(AccessTokenCache.boundedExpiry(millisecondsSince1970: .max, now: now) == now.addingTimeInterval(AccessTokenCache.maximumLifetime))
        #expect(AccessTokenCache.boundedExpiry(millisecondsSince1970: .min, now: now) == now)
        #expect(AccessTokenCache.boundedExpiry(millisecondsSince1970: -1, now: now) == now)
    }

    /// Ids with control characters or of absurd length are refused; free text is cleaned and cut.
    @Test func decodedBodiesAreBounded() throws {
        func reply(_ json: String) -> HTTPExchange.Reply {
            HTTPExchange.Reply(status: 200, headers: [:], body: Array(json.utf8), latency: .zero)
        }
        let forged = try #require(throwsFlexChargeError {
            let _: FlexChargeResponse<EvaluateResponse> = try FlexChargeClient.decode(
                reply(#"{"orderSessionKey": "abc\n2026-01-01 INFO forged", "status": "APPROVED"}"#), route: "POST /evaluate", renewedToken: false)
        })
        #expect(forged.failureClass == .ambiguous)
        #expect(forged.message.contains("orderSessionKey"))
        let long = String(repeating: "x", count: 5000)
        let answer: FlexChargeResponse<EvaluateResponse> = try FlexChargeClient.decode(
            reply(#"{"orderSessionKey": "k-1", "status": "\#(long)", "result": "a\u0000b"}"#), route: "POST /evaluate", renewedToken: false)
        #expect(answer.body.orderSessionKey == "k-1")
        #expect(answer.body.status!.count <= 65)
        #expect(answer.body.result == "a b")
        let error = try #require(throwsFlexChargeError {
            let _: FlexChargeResponse<Order> = try FlexChargeClient.decode(
                HTTPExchange.Reply(status: 400, headers: [:], body: Array(#"{"title": "\#(long)\r\nforged", "\#(long)": ["\#(long)"]}"#.utf8), latency: .zero),
                route: "GET /orders/{id}", renewedToken: false)
        })
        #expect(error.message.count <= SafeText.maximumStoredLength + 1)
        #expect(!error.message.contains("\n") && !error.message.contains("\r"))
        #expect(error.fieldErrors.keys.allSatisfy { $0.count <= ErrorBody.maximumFieldNameLength + 1 })
        #expect(error.fieldErrors.values.joined().allSatisfy { $0.count <= ErrorBody.maximumMessageLength + 1 })
    }

    @Test func safeTextForLogCannotForgeALine() {
        let value = "m1\n2026-12-01T00:00:00Z critical forged line \"quoted\" \u{1B}[31m"
        let logged = SafeText.forLog(value)
        #expect(!logged.contains("\n") && !logged.contains("\u{1B}"))
        #expect(logged.hasPrefix("\"") && logged.hasSuffix("\""))
        #expect(logged.contains(#"\n"#) && logged.contains(#"\""#))
        #expect(SafeText.forLog(String(repeating: "a", count: 1000)).count <= SafeText.maximumLoggedLength + 3)
    }
}

/// The FlexChargeError a synchronous body throws, if any.
private func throwsFlexChargeError(_ body: () throws -> Void) -> FlexChargeError? {
    do {
        try body()
        return nil
    } catch {
        return error as? FlexChargeError
    }
}
