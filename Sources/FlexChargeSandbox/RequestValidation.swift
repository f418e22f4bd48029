import Foundation

/// Field validation of `/evaluate` and `/transmit` bodies with the messages FlexCharge uses.
enum RequestValidation {
    /// Field path (PascalCase, as in FlexCharge's ModelState) → messages.
    typealias Errors = [String: [String]]

    private static let transactionFields = ["Id", "ResponseCode", "AvsResultCode", "CvvResultCode", "CavvResultCode",
                                            "ResponseCodeSource"]

    /// Validates an `/evaluate` body. `requiresExpiry` is true for managed-MIT accounts.
    static func evaluate(_ body: JSONFields, now: Date, requiresExpiry: Bool) -> Errors {
        var errors = common(body)
        if body.string("idempotencyKey") == nil {
            errors["IdempotencyKey", default: []].append("The IdempotencyKey field is required.")
        }
        if body.has("isDeclined"), body.bool("isDeclined") != true {
            errors["IsDeclined", default: []].append("The field IsDeclined must be true.")
        }
        for object in ["Payer", "BillingInformation", "PaymentMethod"] where !body.has(object) {
            errors[object, default: []].append("The \(object) field is required.")
        }
        if let code = body.string("billingInformation.countryCode"), code.count != 2 {
            errors["BillingInformation.CountryCode", default: []]
                .append("The field CountryCode must be a string with a length of 2.")
        }
        if let amount = body.int("transaction.amount"), !(amount > 10 && amount < 20000) {
            errors["Transaction.Amount", default: []]
                .append("In the sandbox the amount must be greater than 10 and less than 20000 cents.")
        }
        let expiryText = body["expiryDateUtc"] as? String
        if body.has("expiryDateUtc") || (requiresExpiry && body.bool("isMIT") == true) {
            if expiryText.flatMap(parseDate).map({ $0 > now }) != true {
                errors["ExpiryDateUtc", default: []].append("The field ExpiryDateUtc is invalid.")
            }
        }
        return errors
    }

    /// Validates a `/transmit` body.
    static func transmit(_ body: JSONFields) -> Errors {
        var errors = common(body)
        for object in ["Payer", "PaymentMethod"] where !body.has(object) {
            errors[object, default: []].append("The \(object) field is required.")
        }
        if body.bool("isMIT") == nil {
            errors["IsMIT", default: []].append("The IsMIT field is required.")
        }
        return errors
    }

    /// Rules shared by `/evaluate` and `/transmit`: order id, the declined flag and the transaction object.
    private static func common(_ body: JSONFields) -> Errors {
        var errors: Errors = [:]
        if body.string("orderId") == nil { errors["OrderId"] = ["Merchant's orderId is required"] }
        if body.bool("isDeclined") == nil { errors["IsDeclined"] = ["The IsDeclined field is required."] }
        if !body.has("transaction") {
            errors["Transaction"] = ["The Transaction field is required."]
        } else {
            for field in transactionFields where body.string("transaction.\(field)") == nil {
                errors["Transaction.\(field)"] = ["The \(field) field is required."]
            }
            if body.int("transaction.amount") == nil { errors["Transaction.Amount"] = ["The Amount field is required."] }
        }
        return errors
    }

    /// ISO-8601 with or without fractional seconds.
    static func parseDate(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
