import Foundation

/// FlexCharge request bodies as a gateway would write them into `flexcharge.outbox.payload`
/// (no credentials, no card number: a /tokenize token with `"token": true`). Used by the demo,
/// the tests and the benchmarks; the sandbox's decision rules pick the outcome from `payerEmail`
/// (`approve…` → APPROVED, `decline…` → DECLINED) and the amount.
public enum SamplePayloads {
    /// A `/transmit` body for one processed payment.
    public static func transmit(orderID: String, amountCents: Int, declined: Bool, descriptor: String = "SHOES*ONLINE",
                                padding: Int = 0) -> String {
        object([
            "isDeclined": declined,
            "orderSource": "ecommerce",
            "transaction": transaction(orderID: orderID, amountCents: amountCents, descriptor: descriptor),
            "payer": ["email": "shopper-\(orderID)@example.com", "id": "customer-\(orderID)"],
            "paymentMethod": [
                "holderName": "Joe Jones", "cardType": "CREDIT", "cardBrand": "VISA", "cardCountry": "US",
                "expirationMonth": 9, "expirationYear": 2030, "cardBinNumber": "400000", "cardLast4Digits": "3184",
            ],
            "additionalFields": padding > 0 ? [["key": "note", "value": String(repeating: "x", count: padding)]] : [],
        ])
    }

    /// An `/evaluate` body for a declined payment. MIT bodies carry a subscription and an
    /// `expiryDateUtc` three weeks ahead (managed MIT).
    public static func evaluate(orderID: String, amountCents: Int, payerEmail: String, mit: Bool,
                                descriptor: String = "SHOES*ONLINE", expiry: Date = Date().addingTimeInterval(21 * 86_400)) -> String {
        var body: [String: Any] = [
            "isDeclined": true,
            "transaction": transaction(orderID: orderID, amountCents: amountCents, descriptor: descriptor),
            "payer": ["email": payerEmail, "id": "customer-\(orderID)"],
            "billingInformation": [
                "firstName": "Joe", "lastName": "Jones", "country": "United States", "countryCode": "US",
                "addressLine1": "1 Main St", "city": "Austin", "state": "TX", "zipcode": "78701",
            ],
            "paymentMethod": [
                "token": true, "cardNumber": "tok_\(orderID)", "holderName": "Joe Jones", "cardType": "CREDIT",
                "cardBrand": "VISA", "cardCountry": "US", "expirationMonth": 9, "expirationYear": 2030,
                "cardBinNumber": "400000", "cardLast4Digits": "3184",
            ],
        ]
        if mit {
            body["isRecurring"] = true
            body["expiryDateUtc"] = ISO8601DateFormatter().string(from: expiry)
            body["subscription"] = ["subscriptionId": "sub-\(orderID)", "interval": "monthly", "price": amountCents, "currency": "USD"]
        } else {
            body["customerIp"] = "203.0.113.10"
        }
        return object(body)
    }

    private static func transaction(orderID: String, amountCents: Int, descriptor: String) -> [String: Any] {
        [
            "id": "psp-\(orderID)", "timestampUtc": ISO8601DateFormatter().string(from: Date()), "timezoneUtcOffset": 0,
            "amount": amountCents, "currency": "USD", "responseCode": "05", "responseCodeSource": "NMI",
            "avsResultCode": "M", "cvvResultCode": "M", "cavvResultCode": "NA", "cardNotPresent": true,
            "dynamicDescriptor": descriptor,
        ]
    }

    private static func object(_ value: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }
}
