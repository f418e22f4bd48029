/// The generic answer envelope of operations such as `/capture`, `/orders/{id}/cancel` and
/// `/orders/{id}/external-cancel` (an empty `{}` decodes too).
public struct OperationResponse: Decodable, Sendable, Hashable {
    /// `SUCCESS` or `FAILED` where FlexCharge reports one.
    public var status: String?
    /// Alternative spelling of `status` seen on `/capture`.
    public var captureStatus: String?
    public var success: Bool?
    public var result: String?
}
