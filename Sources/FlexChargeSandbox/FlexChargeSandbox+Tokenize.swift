import Foundation

/// `POST /tokenize`: vaults a sandbox test card, answering as FlexCharge's sandbox answered a recorded client
/// (flexcharge-api.md §4).
extension FlexChargeSandbox {
    /// Vaults the card of a `/tokenize` request.
    ///
    /// The merchant is named either by the documented query pair `mid` + `environment` (the tokenization key), or,
    /// as the real sandbox also accepted from an independently written client, by a valid bearer token alone
    /// (`bearerMid`). A query `mid` that disagrees with the bearer's is refused (403), as on the other routes.
    func tokenize(_ request: APIRequest, bearerMid: String?, state: inout SandboxState) -> SandboxReply {
        let queryMid = request.queryValues("mid").first
        let mid: String
        if let queryMid, let key = request.queryValues("environment").first {
            guard let merchant = merchantsByMid[queryMid], merchant.tokenizationKey == key else {
                return .problem(400, "Unknown tokenization key")
            }
            mid = queryMid
        } else if let bearerMid {
            guard queryMid == nil || queryMid == bearerMid else { return .problem(403, "Forbidden: mid does not match the token") }
            mid = bearerMid
        } else if request.authorization != nil {
            return .unauthorized
        } else {
            return .problem(400, "The mid and environment query parameters are required")
        }
        let body = JSONFields(request.body) ?? JSONFields()
        var errors: [String: [String]] = [:]
        let number = body.string("payment_method.credit_card.number") ?? ""
        if !DecisionRules.whitelistedCards.contains(number) {
            errors["CreditCard.Number"] = ["Only whitelisted sandbox test cards are accepted"]
        }
        // `MM` as documented, or a one- or two-digit number (a recorded client sent the integer 3).
        let month = body.string("payment_method.credit_card.month") ?? ""
        let monthValue = (1...2).contains(month.count) && month.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ? Int(month) : nil
        if !(1...12).contains(monthValue ?? 0) { errors["CreditCard.Month"] = ["Month must be MM"] }
        let year = body.string("payment_method.credit_card.year") ?? ""
        if year.count != 4 || Int(year) == nil { errors["CreditCard.Year"] = ["Year must be YYYY"] }
        guard errors.isEmpty else {
            var reply = SandboxReply.validation(errors, shape: configuration.validationErrorShape)
            reply.mid = mid
            return reply
        }
        let token = UUID().uuidString.lowercased()
        state.vault[token] = number
        let card = VaultedCard(token: token, number: number, month: monthValue ?? 0, year: Int(year) ?? 0,
                               firstName: body.string("payment_method.credit_card.first_name"),
                               lastName: body.string("payment_method.credit_card.last_name"),
                               created: SandboxState.iso(state.now()))
        var reply = SandboxReply.envelope(["transaction": card.transaction, "cardBinInfo": NSNull()], ledgerStatus: "TOKENIZED")
        reply.mid = mid
        return reply
    }
}

/// The Spreedly-style vault transaction FlexCharge's sandbox answers `/tokenize` with: the full field set of the
/// recorded answer (flexcharge-api.md §4.3), mostly `null`. The PAN and CVV are never echoed (`number` and
/// `verification_value` are `null`); the BIN is the first eight digits of a 16-digit card, as recorded
/// (`"first_six_digits": "41111111"`).
struct VaultedCard {
    var token: String
    var number: String
    var month: Int
    var year: Int
    var firstName: String?
    var lastName: String?
    var created: String

    var transaction: [String: Any] {
        var fields = Self.nulls([
            "state", "token", "transaction_type", "order_id", "ip", "description", "email", "merchant_name_descriptor",
            "merchant_location_descriptor", "gateway_specific_fields", "gateway_specific_response_fields",
            "gateway_transaction_id", "gateway_latency_ms", "currency_code", "retain_on_success", "message_key", "message",
            "response",
        ])
        fields.merge([
            "on_test_gateway": true, "created_at": created, "updated_at": created, "succeeded": true, "amount": 0,
            "payment_method_added": false, "payment_method": paymentMethod,
        ]) { $1 }
        return fields
    }

    private var paymentMethod: [String: Any] {
        var fields = Self.nulls([
            "email", "data", "storage_state", "metadata", "card_type", "address1", "address2", "city", "state", "zip",
            "country", "phone_number", "company", "full_name", "payment_method_type", "errors", "fingerprint",
            "verification_value", "number",
        ])
        fields.merge([
            "token": token, "created_at": created, "updated_at": created, "test": false,
            "last_four_digits": String(number.suffix(4)), "first_six_digits": String(number.prefix(number.count >= 16 ? 8 : 6)),
            "first_name": firstName ?? NSNull(), "last_name": lastName ?? NSNull(), "month": month, "year": year,
        ] as [String: Any]) { $1 }
        return fields
    }

    private static func nulls(_ keys: [String]) -> [String: Any] {
        Dictionary(uniqueKeysWithValues: keys.map { ($0, NSNull() as Any) })
    }
}
