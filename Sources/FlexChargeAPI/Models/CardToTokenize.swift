/// Card data sent to `POST /tokenize`. `description` shows only the last four digits. Decodable from the
/// camelCase fields of its properties (the `card` of `serve`'s `POST /v1/tokenize` body).
public struct CardToTokenize: Sendable, Hashable, Decodable, CustomStringConvertible, CustomDebugStringConvertible {
    public var firstName: String
    public var lastName: String
    /// The PAN. Never logged.
    public var number: String
    /// The CVV, if known. Never logged.
    public var verificationValue: String?
    /// Two digits, e.g. `"03"`.
    public var month: String
    /// Four digits.
    public var year: String
    public var email: String?
    public var senseKey: String?

    /// Creates card data to vault.
    public init(
        firstName: String, lastName: String, number: String, month: String, year: String,
        verificationValue: String? = nil, email: String? = nil, senseKey: String? = nil
    ) {
        self.firstName = firstName
        self.lastName = lastName
        self.number = number
        self.month = month
        self.year = year
        self.verificationValue = verificationValue
        self.email = email
        self.senseKey = senseKey
    }

    public var description: String { "CardToTokenize(****\(number.suffix(4)))" }
    public var debugDescription: String { description }

    /// The documented snake_case body `{"payment_method": {"credit_card": {...}}}`.
    var requestBody: TokenizeRequestBody {
        TokenizeRequestBody(payment_method: .init(
            email: email, sense_key: senseKey,
            credit_card: .init(first_name: firstName, last_name: lastName, number: number,
                               verification_value: verificationValue ?? "", month: month, year: year)))
    }
}

/// Wire shape of the `/tokenize` body.
struct TokenizeRequestBody: Encodable {
    struct PaymentMethod: Encodable {
        var email: String?
        var sense_key: String?
        var credit_card: CreditCard
    }

    struct CreditCard: Encodable {
        var first_name: String
        var last_name: String
        var number: String
        var verification_value: String
        var month: String
        var year: String
    }

    var payment_method: PaymentMethod
}
