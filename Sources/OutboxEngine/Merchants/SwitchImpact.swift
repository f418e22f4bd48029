import Foundation
import LibPQ

/// What changing one switch of a merchant (or of one of its sites) will affect, for the
/// confirmation an operator reads before making it (the ops console). The switch is read when a
/// worker claims an event (migrations/0002, 0014), so the change reaches every event still
/// pending on that channel: those are counted here, per lane.
public struct SwitchImpact: Sendable, Equatable {
    /// Pending events of one lane that will be routed by the new value.
    public struct LaneCount: Sendable, Equatable {
        /// The lane's name (`flexcharge.lanes`, ``Lane``).
        public let lane: String
        public let events: Int
        /// Of those, events already attempted (retries waiting): they were sent before under the old
        /// value, perhaps to the other environment.
        public let attempted: Int
    }

    public let merchantID: String
    /// The site whose override changes; nil for the merchant's own switch.
    public let site: String?
    public let channel: Channel
    /// The value before; nil: a site's override that inherits (see ``inheritedValue``).
    public let current: ChannelSwitch?
    /// The value asked for; nil: the site's override is removed (inherit).
    public let proposed: ChannelSwitch?
    /// The merchant's own switch of this channel, which a site inherits.
    public let inheritedValue: ChannelSwitch
    /// Pending events that will be routed by the new value, per lane (every lane, most urgent first).
    public let pending: [LaneCount]
    /// For a merchant's switch: its sites that override this channel (their events are not affected).
    public let overridingSites: [String]
    /// Environments the merchant has credentials for.
    public let environmentsWithCredentials: [String]

    /// Where this channel's events go now.
    public var effectiveCurrent: ChannelSwitch { current ?? inheritedValue }
    /// Where they will go after the change.
    public var effectiveProposed: ChannelSwitch { proposed ?? inheritedValue }
    /// True when nothing would change.
    public var isNoChange: Bool { current == proposed }
    /// Events will go to FlexCharge's production: real cards, real money.
    public var goesToProduction: Bool { effectiveProposed == .production && effectiveCurrent != .production }
    /// The new environment has no credentials: its events will fail (`config`) until they are stored.
    public var lacksCredentials: Bool {
        effectiveProposed != .off && !environmentsWithCredentials.contains(effectiveProposed.rawValue)
    }
    /// Pending events affected, all lanes.
    public var pendingTotal: Int { pending.reduce(0) { $0 + $1.events } }
}

extension MerchantStore {
    /// What setting `channel` of `merchantID` (or of its `site`) to `proposed` would affect; nil when
    /// the merchant is unknown. `proposed` nil is "inherit", for a site only.
    public func impact(of proposed: ChannelSwitch?, on channel: Channel, of merchantID: String, site: String?)
        async throws -> SwitchImpact?
    {
        if site == nil && proposed == nil { throw MerchantError("only a site's override can inherit") }
        guard let merchant = try await settings(merchantID) else { return nil }
        let inherited = merchant.switches[channel] ?? .off
        let current: ChannelSwitch? = site.map { merchant.sites[$0]?[channel] } ?? inherited
        // The column name comes from the Channel enum, never from input.
        let rows = try await session.query(
            """
            SELECT l.name AS lane, count(o.id)::integer AS events, count(o.id) FILTER (WHERE o.attempts > 0)::integer AS attempted
              FROM flexcharge.lanes l
              LEFT JOIN flexcharge.outbox o
                ON o.lane = l.lane AND o.state = 'pending' AND o.merchant_id = $1 AND NOT o.is_test
               AND flexcharge.switch_of(o.channel, o.origin) = $2
               AND CASE WHEN $3::text IS NULL
                        THEN NOT EXISTS (SELECT 1 FROM flexcharge.merchant_sites s
                                          WHERE s.merchant_id = o.merchant_id AND s.site = o.site AND s.\(channel.rawValue) IS NOT NULL)
                        ELSE o.site = $3 END
             GROUP BY l.lane, l.name ORDER BY l.lane
            """, [merchantID, channel.rawValue, site]).rows
        let pending = try rows.map {
            SwitchImpact.LaneCount(lane: try $0.decode("lane"), events: try $0.decode("events"), attempted: try $0.decode("attempted"))
        }
        let overriding = site != nil ? [] : merchant.sites.filter { $0.value[channel] != nil }.keys.sorted()
        return SwitchImpact(
            merchantID: merchantID, site: site, channel: channel, current: current, proposed: proposed, inheritedValue: inherited,
            pending: pending, overridingSites: overriding, environmentsWithCredentials: merchant.credentials.keys.sorted())
    }
}
