/// Bounds on what a decoded FlexCharge answer may carry before the caller stores it.
///
/// Identifiers (order ids, transaction keys, tokens) are refused when they are empty, too long or hold control
/// characters: the whole answer is then a malformed response (``FlexChargeError/FailureClass/ambiguous``), because
/// a cut id would name another order. Free text (statuses, messages) is bounded with ``SafeText/stored(_:limit:)``.
protocol CheckedResponse: Sendable {
    /// The answer with its free text bounded, or the reason it cannot be used.
    func checked() throws(ResponseProblem) -> Self
}

/// Why a decoded answer was refused.
struct ResponseProblem: Error {
    var reason: String
}

/// Longest status-like value kept (`APPROVED`, `CAPTUREREQUIRED`, `SUCCESS`...).
private let statusLimit = 64

private func identifier(_ value: String?, _ field: String, limit: Int = SafeText.maximumIdentifierLength) throws(ResponseProblem) -> String? {
    guard let value else { return nil }
    guard SafeText.isIdentifier(value, limit: limit) else {
        throw ResponseProblem(reason: "\(field) is not a usable id (empty, over \(limit) characters, or control characters)")
    }
    return value
}

extension AccessTokenResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        guard SafeText.isIdentifier(accessToken, limit: 16 * 1024) else {
            throw ResponseProblem(reason: "accessToken is empty, too long or holds control characters")
        }
        return self
    }
}

extension TransmitResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.transmitId = try identifier(transmitId, "transmitId")
        copy.result = SafeText.stored(result, limit: statusLimit)
        return copy
    }
}

extension EvaluateResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.orderSessionKey = try identifier(orderSessionKey, "orderSessionKey")
        copy.orderId = try identifier(orderId, "orderId")
        // Every evaluate answer names FlexCharge's order: without it the order can be neither looked up nor
        // refunded, so an answer without one is malformed (the caller resolves it by its own order id).
        guard copy.orderSessionKey != nil || copy.orderId != nil else {
            throw ResponseProblem(reason: "no orderSessionKey or orderId in an evaluate answer")
        }
        copy.status = SafeText.stored(status, limit: statusLimit)
        copy.result = SafeText.stored(result, limit: statusLimit)
        copy.senseKey = try identifier(senseKey, "senseKey")
        return copy
    }
}

extension OperationResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.status = SafeText.stored(status, limit: statusLimit)
        copy.captureStatus = SafeText.stored(captureStatus, limit: statusLimit)
        copy.result = SafeText.stored(result, limit: statusLimit)
        return copy
    }
}

extension OutcomeResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.status = SafeText.stored(status, limit: statusLimit)
        copy.confirmationId = SafeText.stored(confirmationId, limit: SafeText.maximumIdentifierLength)
        return copy
    }
}

extension RefundResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.status = SafeText.stored(status, limit: statusLimit)
        copy.responseCode = SafeText.stored(responseCode, limit: statusLimit)
        copy.responseMessage = SafeText.stored(responseMessage)
        copy.transactionId = SafeText.stored(transactionId, limit: SafeText.maximumIdentifierLength)
        return copy
    }
}

extension Order: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        guard SafeText.isIdentifier(id) else {
            throw ResponseProblem(reason: "order id is not a usable id (empty, over \(SafeText.maximumIdentifierLength) characters, or control characters)")
        }
        copy.statusName = SafeText.stored(statusName, limit: statusLimit)
        // Compared with the gateway's order id, never stored on its own: an unusable one matches nothing.
        copy.referenceNumber = referenceNumber.flatMap { SafeText.isIdentifier($0) ? $0 : nil }
        copy.mid = SafeText.stored(mid, limit: SafeText.maximumIdentifierLength)
        copy.currencyCode = SafeText.stored(currencyCode, limit: statusLimit)
        copy.orderPlacedDate = SafeText.stored(orderPlacedDate, limit: statusLimit)
        copy.expiryDate = SafeText.stored(expiryDate, limit: statusLimit)
        copy.email = SafeText.stored(email, limit: 320)
        copy.firstName = SafeText.stored(firstName, limit: SafeText.maximumIdentifierLength)
        copy.lastName = SafeText.stored(lastName, limit: SafeText.maximumIdentifierLength)
        return copy
    }
}

extension OrdersPage: CheckedResponse {
    /// More items than any page size FlexCharge accepts.
    static let maximumItems = 1000

    func checked() throws(ResponseProblem) -> Self {
        guard items.count <= Self.maximumItems else {
            throw ResponseProblem(reason: "a page of \(items.count) orders (at most \(Self.maximumItems) expected)")
        }
        var copy = self
        copy.items = []
        copy.items.reserveCapacity(items.count)
        for item in items { copy.items.append(try item.checked()) }
        return copy
    }
}

extension TokenizeResponse: CheckedResponse {
    func checked() throws(ResponseProblem) -> Self {
        var copy = self
        copy.transaction?.state = SafeText.stored(transaction?.state, limit: statusLimit)
        if let card = transaction?.payment_method {
            var bounded = card
            bounded.token = try identifier(card.token, "token", limit: 512)
            // Anything but four digits is not a last four: the caller falls back to the card it sent.
            bounded.last_four_digits = card.last_four_digits.flatMap { $0.count == 4 && $0.allSatisfy(\.isASCIIDigit) ? $0 : nil }
            // The BIN: six to eight digits (the real sandbox answered eight for a 16-digit card).
            bounded.first_six_digits = card.first_six_digits.flatMap { (6...8).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) ? $0 : nil }
            bounded.fingerprint = SafeText.stored(card.fingerprint, limit: SafeText.maximumIdentifierLength)
            bounded.card_type = SafeText.stored(card.card_type, limit: statusLimit)
            copy.transaction?.payment_method = bounded
        }
        return copy
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
