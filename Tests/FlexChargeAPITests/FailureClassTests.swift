import FlexChargeAPI
import FlexChargeSandbox
import Foundation
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
        (.resetBeforeProcessing, .retryable, nil, 0),
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
}
