import FlexChargeAPI
import FlexChargeSandbox
import Foundation
import Testing

/// What a FlexCharge answer may do to the client: nothing but a bounded answer or a classified, bounded error.
///
/// ``FuzzFlexChargeServer`` answers every call with a random, often malformed reply. The client calls every
/// endpoint in turn, one call at a time, so a run is replayable: `FUZZ_SEED=<seed printed below>` (and
/// `FUZZ_ITERATIONS`) repeat it exactly.
@Suite struct ResponseFuzzTests {
    enum Endpoint: CaseIterable {
        case transmit, evaluate, tokenize, outcome, order, orders, cancel, externalCancel, refund, capture
    }

    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
    }

    static var iterations: Int {
        ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 3000
    }

    @Test func everyEndpointSurvivesMalformedAnswers() async throws {
        let seed = Self.seed
        let iterations = Self.iterations
        print("ResponseFuzzTests: seed \(seed), \(iterations) calls (replay with FUZZ_SEED=\(seed) FUZZ_ITERATIONS=\(iterations))")
        let server = try await FuzzFlexChargeServer.start(seed: seed)
        let client = FlexChargeClient(
            environment: FlexChargeEnvironment(name: .sandbox, baseURL: server.baseURL),
            configuration: .init(connectTimeout: .seconds(2), requestTimeout: .seconds(1)),
            logger: WorkerHarness.silent)
        var master = SplitMix64(seed: seed)
        var problems: [String] = []
        var successes = 0, failures: [FlexChargeError.FailureClass: Int] = [:], checkedClean = 0
        let started = ContinuousClock.now
        for index in 0..<iterations {
            let iterationSeed = master.next()
            server.reseed(iterationSeed)
            let endpoint = Endpoint.allCases[index % Endpoint.allCases.count]
            let credentials = MerchantCredentials(mid: "mid-\(index % 7)", appKey: "key-\(index % 11)", appSecret: "secret",
                                                  tokenizationKey: "tok-key")
            let context = "call \(index) (\(endpoint), iteration seed \(iterationSeed))"
            do {
                let answer = try await Self.call(endpoint, client: client, credentials: credentials)
                successes += 1
                for problem in answer { problems.append("\(context): \(problem)") }
                if let clean = server.sent.last, clean.route != .token, let status = clean.cleanStatus, !(200..<300).contains(status) {
                    problems.append("\(context): a clean HTTP \(status) (\(clean.label)) gave a success")
                }
            } catch let error as FlexChargeError {
                failures[error.failureClass, default: 0] += 1
                for problem in Self.problems(in: error) { problems.append("\(context): \(problem) in \(error)") }
                // A well-framed reply with the expected body shape must be classified exactly.
                if let last = server.sent.last, last.route != .token, let status = last.cleanStatus {
                    checkedClean += 1
                    let expected: FlexChargeError.FailureClass? = switch status {
                    case 200..<300: nil
                    case 408, 429, 500...599: .retryable
                    case 409: nil  // depends on the message
                    default: .permanent
                    }
                    if (200..<300).contains(status) {
                        problems.append("\(context): a clean HTTP \(status) (\(last.label)) failed: \(error)")
                    } else if let expected, error.failureClass != expected || error.httpStatus != status {
                        problems.append("\(context): clean HTTP \(status) (\(last.label)) classified \(error.failureClass) \(error.httpStatus ?? -1)")
                    }
                }
            } catch {
                problems.append("\(context): not a FlexChargeError: \(type(of: error)) \(error)")
            }
            if problems.count > 20 { break }
        }
        let elapsed = ContinuousClock.now - started
        print("ResponseFuzzTests: \(successes) answers, failures \(failures.map { "\($0.key.rawValue) \($0.value)" }.sorted()), "
              + "\(checkedClean) clean failures checked, \(server.replyCount) replies in \(elapsed)")
        try await client.shutdown()
        await server.stop()
        #expect(problems.isEmpty, "seed \(seed):\n\(problems.prefix(20).joined(separator: "\n"))")
        #expect(successes > iterations / 10, "the fuzzer should also let some calls through (seed \(seed))")
        #expect((failures[.retryable] ?? 0) > 0 && (failures[.permanent] ?? 0) > 0 && (failures[.ambiguous] ?? 0) > 0)
    }

    /// One call; returns the problems found in a successful answer.
    static func call(_ endpoint: Endpoint, client: FlexChargeClient, credentials: MerchantCredentials) async throws -> [String] {
        let body = Array(#"{"orderId":"o-1","idempotencyKey":"k-1","mid":"m"}"#.utf8)
        switch endpoint {
        case .transmit:
            let answer = try await client.transmit(body: body, credentials: credentials)
            return ids(["transmitId": answer.body.transmitId]) + texts([answer.body.result])
        case .evaluate:
            let answer = try await client.evaluate(body: body, credentials: credentials)
            return ids(["orderSessionKey": answer.body.orderSessionKey, "orderId": answer.body.orderId, "senseKey": answer.body.senseKey])
                + texts([answer.body.status, answer.body.result])
        case .tokenize:
            let answer = try await client.tokenize(
                card: CardToTokenize(firstName: "A", lastName: "B", number: "4111111111111111", month: "01", year: "2030"),
                credentials: credentials)
            let lastFour = answer.body.transaction?.payment_method?.last_four_digits
            return ids(["token": answer.body.token]) + (lastFour.map { $0.count == 4 && $0.allSatisfy(\.isNumber) } == false ? ["last four \(lastFour!)"] : [])
        case .outcome:
            let answer = try await client.outcome(orderSessionKey: "osk", credentials: credentials)
            return texts([answer.body.status, answer.body.confirmationId])
        case .order:
            let answer = try await client.order(id: "osk-1", credentials: credentials)
            return ids(["id": answer.body.id]) + texts([answer.body.statusName, answer.body.expiryDate, answer.body.referenceNumber])
        case .orders:
            let answer = try await client.orders(query: OrdersQuery(mid: credentials.mid, pageSize: 100, pageNumber: 1, query: "o-1"),
                                                 credentials: credentials)
            if answer.body.items.count > 1000 { return ["\(answer.body.items.count) items"] }
            return answer.body.items.flatMap { ids(["id": $0.id]) + texts([$0.statusName, $0.referenceNumber]) }
        case .cancel:
            let answer = try await client.cancel(orderId: "osk-1", idempotencyKey: "k", credentials: credentials)
            return texts([answer.body.status, answer.body.result])
        case .externalCancel:
            let answer = try await client.externalCancel(externalOrderId: "o-1", idempotencyKey: "k", credentials: credentials)
            return texts([answer.body.status, answer.body.captureStatus])
        case .refund:
            let answer = try await client.refund(orderId: "osk-1", amountCents: 1234, message: "r", credentials: credentials)
            return texts([answer.body.status, answer.body.responseCode, answer.body.responseMessage, answer.body.transactionId])
        case .capture:
            let answer = try await client.capture(CaptureRequest(idempotencyKey: "k", orderId: "osk-1", amount: 100), credentials: credentials)
            return texts([answer.body.status, answer.body.captureStatus, answer.body.result])
        }
    }

    static func ids(_ values: [String: String?]) -> [String] {
        values.compactMap { name, value in
            guard let value else { return nil }
            return SafeText.isIdentifier(value, limit: 512) ? nil : "unusable \(name) \(SafeText.forLog(value)) kept"
        }
    }

    static func texts(_ values: [String?]) -> [String] {
        values.compactMap { value in
            guard let value else { return nil }
            if value.count > SafeText.maximumStoredLength + 1 { return "text of \(value.count) characters kept" }
            if value.unicodeScalars.contains(where: isControl) { return "control character kept in \(SafeText.forLog(value))" }
            return nil
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) }

    /// What an error may not be: empty, unbounded, multi-line, or asking for an unbounded wait.
    static func problems(in error: FlexChargeError) -> [String] {
        var problems: [String] = []
        if error.message.isEmpty { problems.append("empty message") }
        if error.message.count > 1200 { problems.append("message of \(error.message.count) characters") }
        if error.description.unicodeScalars.contains(where: isControl) { problems.append("control character in the description") }
        if let wait = error.retryAfter, wait > RetryAfter.maximum || wait < .zero { problems.append("Retry-After \(wait) kept") }
        if error.fieldErrors.count > 20 { problems.append("\(error.fieldErrors.count) field errors") }
        for (field, messages) in error.fieldErrors {
            if field.count > 101 || messages.count > 5 || messages.contains(where: { $0.count > 301 }) {
                problems.append("unbounded field error \(SafeText.forLog(field))")
            }
        }
        if let body = error.responseBody, body.count > 1 << 20 { problems.append("response body of \(body.count) bytes kept") }
        return problems
    }
}
