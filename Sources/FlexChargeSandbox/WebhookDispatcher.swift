import AsyncHTTPClient
import FlexChargeAPI
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A webhook delivery as received by the sandbox's own sink (`POST /_sandbox/webhook-sink`).
public struct ReceivedWebhook: Sendable, Hashable {
    /// Header names lower-cased.
    public var headers: [String: String]
    /// The raw body bytes as received.
    public var body: [UInt8]
}

/// Delivers signed webhooks (PascalCase payload, `x-fc-*` HMAC-SHA512 headers), redelivering on failure with
/// `IsResent: true`, and keeps what the built-in sink received.
final class WebhookDispatcher: Sendable {
    private let contentType: String
    private let maxAttempts: Int
    /// `IsTestMode` of every delivery: true when this simulator plays FlexCharge's sandbox.
    private let isTestMode: Bool
    private let logger: Logger
    private let sink = Mutex<[ReceivedWebhook]>([])

    init(contentType: String, maxAttempts: Int, isTestMode: Bool, logger: Logger) {
        self.contentType = contentType
        self.maxAttempts = max(1, maxAttempts)
        self.isTestMode = isTestMode
        self.logger = logger
    }

    /// Sends `event` for `order` in the background; `record` is called once per attempt.
    func deliver(event: String, order: SandboxOrder, at time: Date, url: String, subscriberKey: String,
                 record: @escaping @Sendable (SandboxLedger.Webhook) -> Void) {
        Task {
            for attempt in 1...maxAttempts {
                let status = await send(event: event, order: order, time: time, url: url, key: subscriberKey,
                                        isResent: attempt > 1)
                record(.init(time: SandboxState.iso(time), event: event, orderSessionKey: order.id, url: url,
                             httpStatus: status, isResent: attempt > 1))
                if let status, (200..<300).contains(status) { return }
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
            logger.warning("webhook not delivered", metadata: ["event": "\(event)", "order": "\(order.id)"])
        }
    }

    /// One signed POST; the HTTP status, or `nil` on a transport error.
    private func send(event: String, order: SandboxOrder, time: Date, url: String, key: String, isResent: Bool) async -> Int? {
        let payload: [String: Any] = [
            "Event": event, "TimeStamp": SandboxState.iso(time), "EventData": NSNull(),
            "ExternalOrderId": order.merchantOrderId, "OrderId": order.id, "ConfirmationId": order.confirmationId,
            "IsTestMode": isTestMode, "IsResent": isResent,
        ]
        let body = SandboxJSONWriter.bytes(payload)
        guard let components = URLComponents(string: url), let host = components.host else { return nil }
        let hostHeader = components.port.map { "\(host):\($0)" } ?? host
        let nonce = (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased().prefix(32)
        let date = HTTPDate.format(time)
        guard let signature = WebhookSignature.sign(body: body, host: hostHeader, date: date, nonce: String(nonce),
                                                    subscriberKey: key) else { return nil }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = [
            "Content-Type": contentType, "x-fc-authorization": signature.authorization,
            "x-fc-content-sha512": signature.contentSHA512, "x-fc-date": signature.date, "x-fc-nonce": signature.nonce,
        ]
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            return Int(response.status.code)
        } catch {
            return nil
        }
    }

    /// Stores a delivery received by the sink.
    func receive(_ webhook: ReceivedWebhook) { sink.withLock { $0.append(webhook) } }

    /// Deliveries received by the sink so far.
    func received() -> [ReceivedWebhook] { sink.withLock { $0 } }

    func clearReceived() { sink.withLock { $0.removeAll() } }
}
