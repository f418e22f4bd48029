/// The answer of `POST /tokenize` (a Spreedly-style vault transaction, flexcharge-api.md §4.3).
///
/// The real sandbox answers with some sixty fields, almost all `null`; only the token matters to the outbox.
/// Decoding is tolerant: every field is optional, and an informational field of an unexpected type (a `month`
/// sent as `"09"`, a `state` sent as an object) is read as absent instead of failing the whole answer. Only the
/// token is checked strictly (``FlexChargeClient/tokenize(card:credentials:)`` refuses an unusable one).
public struct TokenizeResponse: Decodable, Sendable, Hashable {
    /// The vault transaction.
    public struct VaultTransaction: Decodable, Sendable, Hashable {
        public var succeeded: Bool?
        /// The vault's transaction state (`null` in the recorded sandbox answers).
        public var state: String?
        public var payment_method: VaultedCard?

        public init(from decoder: any Decoder) throws {
            let fields = try decoder.container(keyedBy: TolerantKey.self)
            succeeded = fields.tolerant(Bool.self, "succeeded")
            state = fields.tolerant(String.self, "state")
            payment_method = fields.tolerant(VaultedCard.self, "payment_method")
        }
    }

    /// The vaulted card.
    public struct VaultedCard: Decodable, Sendable, Hashable {
        public var token: String?
        public var last_four_digits: String?
        /// The card's BIN: despite the name, up to eight digits (the recorded sandbox answered `"41111111"`).
        public var first_six_digits: String?
        public var fingerprint: String?
        public var card_type: String?
        public var month: Int?
        public var year: Int?

        public init(from decoder: any Decoder) throws {
            let fields = try decoder.container(keyedBy: TolerantKey.self)
            token = fields.tolerant(String.self, "token")
            last_four_digits = fields.tolerant(String.self, "last_four_digits")
            first_six_digits = fields.tolerant(String.self, "first_six_digits")
            fingerprint = fields.tolerant(String.self, "fingerprint")
            card_type = fields.tolerant(String.self, "card_type")
            month = fields.tolerant(Int.self, "month")
            year = fields.tolerant(Int.self, "year")
        }
    }

    public var transaction: VaultTransaction?
    public var success: Bool?

    public init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: TolerantKey.self)
        transaction = fields.tolerant(VaultTransaction.self, "transaction")
        success = fields.tolerant(Bool.self, "success")
    }

    /// The token to send as `paymentMethod.cardNumber` with `token: true`.
    public var token: String? { transaction?.payment_method?.token }
}

/// Any JSON member name.
struct TolerantKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == TolerantKey {
    /// The member `name` as `T`, or `nil` when it is missing, `null` or of another type.
    func tolerant<T: Decodable>(_ type: T.Type, _ name: String) -> T? {
        (try? decodeIfPresent(type, forKey: TolerantKey(stringValue: name))) ?? nil
    }
}
