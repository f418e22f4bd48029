/// The answer of `POST /outcome` (deprecated by FlexCharge in favour of `GET /orders/{id}`).
public struct OutcomeResponse: Decodable, Sendable, Hashable {
    /// `APPROVED`, `DECLINED`, `EXPIRED`, `CANCELLED`, `SUBMITTED`, `PROCESSING` or `NOTFOUND`.
    public var status: String?
    /// Short confirmation reference, also sent in webhooks.
    public var confirmationId: String?
    public var success: Bool?
}
