/// The answer of `POST /tokenize` (a Spreedly-style vault transaction).
public struct TokenizeResponse: Decodable, Sendable, Hashable {
    /// The vault transaction.
    public struct VaultTransaction: Decodable, Sendable, Hashable {
        public var succeeded: Bool?
        public var payment_method: VaultedCard?
    }

    /// The vaulted card.
    public struct VaultedCard: Decodable, Sendable, Hashable {
        public var token: String?
        public var last_four_digits: String?
        public var first_six_digits: String?
    }

    public var transaction: VaultTransaction?
    public var success: Bool?

    /// The token to send as `paymentMethod.cardNumber` with `token: true`.
    public var token: String? { transaction?.payment_method?.token }
}
