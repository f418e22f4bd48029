/// The original PSP transaction, shared by `/transmit` and `/evaluate` (amounts in integer cents).
public struct TransactionDetails: Codable, Sendable, Hashable {
    public var id: String
    public var timestampUtc: String?
    public var timezoneUtcOffset: Int?
    /// Amount in cents (`$19.99` → `1999`).
    public var amount: Int
    public var currency: String
    public var responseCode: String
    public var responseCodeSource: String
    public var avsResultCode: String
    public var cvvResultCode: String
    public var cavvResultCode: String
    public var cardNotPresent: Bool?
    public var processorName: String?
    public var responseDescription: String?
    public var transactionType: String?
    public var dynamicDescriptor: String?
    /// The statement descriptor, which the partner checklist asks for when no `siteUrl` can be given. (The
    /// outbox fills it in from its `descriptor` column: migrations/0015_what_is_sent.sql.)
    public var descriptor: String?

    /// Creates transaction details with the fields FlexCharge requires.
    public init(
        id: String, amount: Int, currency: String = "USD", responseCode: String, responseCodeSource: String,
        avsResultCode: String = "NA", cvvResultCode: String = "NA", cavvResultCode: String = "NA",
        timestampUtc: String? = nil, timezoneUtcOffset: Int? = 0, cardNotPresent: Bool? = true
    ) {
        self.id = id
        self.amount = amount
        self.currency = currency
        self.responseCode = responseCode
        self.responseCodeSource = responseCodeSource
        self.avsResultCode = avsResultCode
        self.cvvResultCode = cvvResultCode
        self.cavvResultCode = cavvResultCode
        self.timestampUtc = timestampUtc
        self.timezoneUtcOffset = timezoneUtcOffset
        self.cardNotPresent = cardNotPresent
    }
}

/// The shopper.
public struct Payer: Codable, Sendable, Hashable {
    public var email: String
    public var id: String?
    public var phone: String?
    public var birthdate: String?

    /// Creates a payer.
    public init(email: String, id: String? = nil, phone: String? = nil, birthdate: String? = nil) {
        self.email = email
        self.id = id
        self.phone = phone
        self.birthdate = birthdate
    }
}

/// A billing or shipping address.
public struct Address: Codable, Sendable, Hashable {
    public var firstName: String
    public var lastName: String
    public var country: String
    /// ISO 3166-1 alpha-2.
    public var countryCode: String
    public var addressLine1: String
    public var addressLine2: String?
    public var city: String
    public var state: String?
    public var zipcode: String
    public var phone: String?

    /// Creates an address.
    public init(
        firstName: String, lastName: String, country: String, countryCode: String, addressLine1: String,
        city: String, state: String? = nil, zipcode: String, addressLine2: String? = nil, phone: String? = nil
    ) {
        self.firstName = firstName
        self.lastName = lastName
        self.country = country
        self.countryCode = countryCode
        self.addressLine1 = addressLine1
        self.city = city
        self.state = state
        self.zipcode = zipcode
        self.addressLine2 = addressLine2
        self.phone = phone
    }
}

/// Card data for `/evaluate` (`cardNumber` is a `/tokenize` token when `token` is true) or card metadata for
/// `/transmit` (no `cardNumber`). `description` never shows the card number.
public struct PaymentMethodDetails: Codable, Sendable, Hashable, CustomStringConvertible {
    public var cardNumber: String?
    public var token: Bool?
    public var holderName: String?
    public var cardType: String?
    public var cardBrand: String?
    public var cardCountry: String?
    public var expirationMonth: Int?
    public var expirationYear: Int?
    public var cardBinNumber: String?
    public var cardLast4Digits: String?

    /// Creates payment method details.
    public init(
        cardNumber: String? = nil, token: Bool? = nil, holderName: String? = nil, cardType: String? = nil,
        cardBrand: String? = nil, cardCountry: String? = nil, expirationMonth: Int? = nil, expirationYear: Int? = nil,
        cardBinNumber: String? = nil, cardLast4Digits: String? = nil
    ) {
        self.cardNumber = cardNumber
        self.token = token
        self.holderName = holderName
        self.cardType = cardType
        self.cardBrand = cardBrand
        self.cardCountry = cardCountry
        self.expirationMonth = expirationMonth
        self.expirationYear = expirationYear
        self.cardBinNumber = cardBinNumber
        self.cardLast4Digits = cardLast4Digits
    }

    public var description: String { "PaymentMethodDetails(last4: \(cardLast4Digits ?? "?"), token: \(token ?? false))" }
}

/// A recurring subscription (MIT).
public struct SubscriptionDetails: Codable, Sendable, Hashable {
    public var subscriptionId: String
    public var interval: String
    /// Price in cents.
    public var price: Int
    public var currency: String

    /// Creates subscription details.
    public init(subscriptionId: String, interval: String, price: Int, currency: String = "USD") {
        self.subscriptionId = subscriptionId
        self.interval = interval
        self.price = price
        self.currency = currency
    }
}
