// BFD for a router's static ECMP routes (`routes: [ { to, via: [ a, b ],
// bfd: true } ]`), pure: which next hops of each route carry traffic, given
// the state of each next hop's BFD session.
//
// A next hop is in the group while its session is Up. A session that has
// never been Up says nothing yet (at start-up, or a next hop dead from the
// start): such next hops carry traffic only while no next hop of the route
// is Up, so the route works from the first packet as it would without BFD,
// and a next hop dead from the start leaves as soon as a sibling is known
// alive (one BFD handshake, about a second at the slow start rate) instead
// of never. A session that went Down after being Up takes its next hop out
// until it is Up again; a route with no next hop left leaves the table.

import Wire

public struct BFDStaticRoutes: Sendable {
    public struct Route: Equatable, Sendable {
        public var prefix: IPv4Prefix
        /// The configured next hops, in file order.
        public var gateways: [IPv4Address]
        public init(prefix: IPv4Prefix, gateways: [IPv4Address]) {
            self.prefix = prefix
            self.gateways = gateways
        }
    }

    public let routes: [Route]
    /// Next hops whose session is Up now / has ever been Up.
    public private(set) var up: Set<IPv4Address> = []
    public private(set) var everUp: Set<IPv4Address> = []
    /// Per route prefix, the next hops in use now (all configured ones at first).
    public private(set) var current: [IPv4Prefix: [IPv4Address]]

    public init(_ routes: [Route]) {
        self.routes = routes
        current = Dictionary(routes.map { ($0.prefix, $0.gateways) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every next hop that needs a session.
    public var gateways: Set<IPv4Address> { Set(routes.flatMap(\.gateways)) }

    /// The next hops of `route` that carry traffic (see the file comment).
    public func live(_ route: Route) -> [IPv4Address] {
        let alive = route.gateways.filter { up.contains($0) }
        return alive.isEmpty ? route.gateways.filter { !everUp.contains($0) } : alive
    }

    /// The session with `gateway` is now `state`: the routes whose group
    /// changed, with their new next hops (empty: the route leaves).
    public mutating func sessionChanged(_ gateway: IPv4Address, to state: BFDState) -> [(prefix: IPv4Prefix, gateways: [IPv4Address])] {
        if state == .up {
            up.insert(gateway)
            everUp.insert(gateway)
        } else {
            up.remove(gateway)
        }
        var out: [(prefix: IPv4Prefix, gateways: [IPv4Address])] = []
        for route in routes where route.gateways.contains(gateway) {
            let now = live(route)
            if current[route.prefix] != now {
                current[route.prefix] = now
                out.append((route.prefix, now))
            }
        }
        return out
    }
}
