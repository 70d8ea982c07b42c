// One node's BGP: its sessions (one per neighbour), their BFD sessions (for
// neighbours with `bfd: true`), and the RIB, pure like its parts. The host
// routes events to it by peer address and carries out the actions, each
// tagged with its peer; FIB changes come out as `.fib`.
//
// The one rule it adds (RFC 5882 §4.3, "BFD for BGP"): a neighbour's BFD
// session going from Up to Down takes the BGP session down at once
// (`BGPEvent.bfdDown`: disconnect, routes withdrawn, AutomaticStart later),
// so a dead next hop leaves the ECMP group within the BFD Detection Time
// instead of the BGP hold time. BFD sessions run whatever BGP does; a BGP
// session is not held back while its BFD session is down (§4.2 allows either).
//
// BFD without BGP: a router's static routes with `bfd: true` get a session
// with each next hop (`staticRoutes`, `BFDStaticRoutes` decides the groups,
// given out as `.nextHops`), and a node with `bfd:` answers the sessions
// its directly connected neighbours start (`answersBFDFrom`: the RFC 5880
// §6.1 Passive role, one session per neighbour created by its first packet,
// silent again once it has gone Down), so a wirelab next hop needs no
// configuration of its peers.

import Wire

public struct BGPSpeaker: Sendable {
    public enum Action: Equatable, Sendable {
        case bgp(peer: IPv4Address, BGPAction)
        /// Send BFD packets to the peer's UDP 3784; state changes for logs.
        case bfd(peer: IPv4Address, BFDAction)
        /// A change for the router's table (`BGPFIBChange.apply(to:port:)`).
        case fib(BGPFIBChange)
        /// The static route `prefix` (with `bfd: true`) now uses these of its
        /// next hops (empty: none, the route leaves the table).
        case nextHops(prefix: IPv4Prefix, gateways: [IPv4Address])
    }

    /// Passive sessions answered at most (one per neighbour).
    public static let maxPassiveSessions = 64

    public private(set) var sessions: [IPv4Address: BGPSession] = [:]
    public private(set) var bfd: [IPv4Address: BFDSession] = [:]
    public private(set) var rib: BGPRIB
    public private(set) var staticRoutes: BFDStaticRoutes
    /// Connected subnets whose neighbours' sessions are answered (passive).
    public let answersBFDFrom: [IPv4Prefix]
    let bfdInterval: UInt32
    let bfdMultiplier: UInt8
    let jitterSeed: UInt64
    var nextDiscriminator: UInt32

    /// `bfd`: the BFD parameters for the neighbours in `bfdPeers` and the
    /// next hops of `staticRoutes`; each session gets a discriminator of
    /// its own (`firstDiscriminator` upwards, in peer address order; passive
    /// sessions after them) and jitter seeded from it.
    public init(neighbors: [BGPSessionConfiguration], multipath: Int, bfdPeers: Set<IPv4Address> = [],
                staticRoutes: [BFDStaticRoutes.Route] = [], answersBFDFrom: [IPv4Prefix] = [],
                bfdInterval microseconds: UInt32 = 50_000, bfdMultiplier: UInt8 = 3, firstDiscriminator: UInt32 = 1,
                jitterSeed: UInt64 = 0) {
        rib = BGPRIB(multipath: multipath)
        self.staticRoutes = BFDStaticRoutes(staticRoutes)
        self.answersBFDFrom = answersBFDFrom
        bfdInterval = microseconds
        self.bfdMultiplier = bfdMultiplier
        self.jitterSeed = jitterSeed
        nextDiscriminator = firstDiscriminator
        for n in neighbors { sessions[n.peerAddress] = BGPSession(n) }
        let active = bfdPeers.filter { sessions[$0] != nil }.union(self.staticRoutes.gateways)
        for peer in active.sorted() { bfd[peer] = makeBFDSession(passive: false) }
    }

    mutating func makeBFDSession(passive: Bool) -> BFDSession {
        let discriminator = nextDiscriminator
        nextDiscriminator &+= 1
        var configuration = BFDSessionConfiguration(localDiscriminator: discriminator, interval: bfdInterval,
                                                    multiplier: bfdMultiplier)
        configuration.passive = passive
        return BFDSession(configuration, jitter: BFDJitter(seed: jitterSeed ^ UInt64(discriminator)))
    }

    /// The earliest deadline of any session.
    public var nextDeadline: Instant? {
        (sessions.values.map(\.nextDeadline) + bfd.values.map(\.nextDeadline)).compactMap { $0 }.min()
    }

    /// Starts every session (BGP ManualStart, BFD out of AdminDown).
    public mutating func start(now: Instant) -> [Action] {
        var out: [Action] = []
        for peer in sessions.keys.sorted() { out += bgp(peer, now: now) { $0.handle(.manualStart, now: now) } }
        for peer in bfd.keys.sorted() { out += bfdActions(peer, now: now) { $0.start(now: now) } }
        return out
    }

    /// A BGP event for the session with `peer` (unknown peers: nothing).
    public mutating func handle(_ event: BGPEvent, peer: IPv4Address, now: Instant) -> [Action] {
        bgp(peer, now: now) { $0.handle(event, now: now) }
    }

    /// A BFD packet from `peer` that passed `bfdAcceptsSingleHop` and decoding.
    /// A neighbour's first packet (Your Discriminator 0) on a connected
    /// subnet of `answersBFDFrom` opens a passive session for it.
    public mutating func receive(_ packet: BFDControlPacket, from peer: IPv4Address, now: Instant) -> [Action] {
        var out: [Action] = []
        if bfd[peer] == nil, packet.yourDiscriminator == 0, answersBFDFrom.contains(where: { $0.contains(peer) }),
           bfd.values.filter(\.configuration.passive).count < Self.maxPassiveSessions {
            bfd[peer] = makeBFDSession(passive: true)
            out += bfdActions(peer, now: now) { $0.start(now: now) }
        }
        return out + bfdActions(peer, now: now) { $0.receive(packet, now: now) }
    }

    /// Fires every timer due, in peer order.
    public mutating func advance(to now: Instant) -> [Action] {
        var out: [Action] = []
        for peer in bfd.keys.sorted() { out += bfdActions(peer, now: now) { $0.advance(to: now) } }
        for peer in sessions.keys.sorted() { out += bgp(peer, now: now) { $0.advance(to: now) } }
        return out
    }

    /// Announces to every neighbour (a director's VIP it can serve).
    public mutating func announce(_ prefixes: [IPv4Prefix], now: Instant) -> [Action] {
        var out: [Action] = []
        for peer in sessions.keys.sorted() { out += bgp(peer, now: now) { $0.announce(prefixes, now: now) } }
        return out
    }

    /// Withdraws from every neighbour.
    public mutating func withdraw(_ prefixes: [IPv4Prefix], now: Instant) -> [Action] {
        var out: [Action] = []
        for peer in sessions.keys.sorted() { out += bgp(peer, now: now) { $0.withdraw(prefixes, now: now) } }
        return out
    }

    mutating func bgp(_ peer: IPv4Address, now: Instant, _ body: (inout BGPSession) -> [BGPAction]) -> [Action] {
        guard var s = sessions[peer] else { return [] }
        let actions = body(&s)
        sessions[peer] = s
        var out: [Action] = []
        for a in actions {
            out.append(.bgp(peer: peer, a))
            out += rib.apply(a).map { .fib($0) }
        }
        return out
    }

    mutating func bfdActions(_ peer: IPv4Address, now: Instant, _ body: (inout BFDSession) -> [BFDAction]) -> [Action] {
        guard var b = bfd[peer] else { return [] }
        let actions = body(&b)
        bfd[peer] = b
        var out: [Action] = []
        for a in actions {
            out.append(.bfd(peer: peer, a))
            if case .stateChanged(.up, .down, _) = a {
                out += bgp(peer, now: now) { $0.handle(.bfdDown, now: now) }
            }
            if case let .stateChanged(_, to, _) = a {
                out += staticRoutes.sessionChanged(peer, to: to).map { .nextHops(prefix: $0.prefix, gateways: $0.gateways) }
            }
        }
        return out
    }
}
