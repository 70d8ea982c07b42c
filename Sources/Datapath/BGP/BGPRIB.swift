// The routes learned from every peer (Adj-RIB-In), best-path selection and
// multipath (RFC 4271 §9.1), and the result as a router's FIB takes it:
// prefix → next hops.
//
// Decision process, in order (the subset of §9.1.2.2 built here):
//   1. highest LOCAL_PREF (absent: 100),
//   2. shortest AS_PATH (an AS_SET counts 1),
//   3. lowest ORIGIN (IGP < EGP < INCOMPLETE),
//   4. lowest MULTI_EXIT_DISC (absent: 0) — compared between all routes, not
//      only routes from the same neighbouring AS ("always-compare-med"),
//   5. eBGP over iBGP,
//   6. lowest peer BGP Identifier, then lowest peer address.
// The interior cost to the NEXT_HOP (§9.1.2.2 e) is not looked at: next hops
// are taken to be on a connected network (single-hop sessions).
// Multipath: every route equal to the best in 1–5 (equal AS_PATH length, not
// necessarily the same neighbouring AS — "as-path multipath-relax") is a
// member of the ECMP group, ordered by 6, up to `multipath` distinct next
// hops. `multipath: 1` is plain best path.

import Wire

/// A prefix whose next hops changed; `nextHops` empty: remove the route.
public struct BGPFIBChange: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var prefix: IPv4Prefix
    public var nextHops: [IPv4Address]
    public init(prefix: IPv4Prefix, nextHops: [IPv4Address]) {
        self.prefix = prefix
        self.nextHops = nextHops
    }
    public var description: String {
        nextHops.isEmpty ? "\(prefix) removed" : "\(prefix) via \(nextHops.map(\.description).joined(separator: ", "))"
    }
}

public struct BGPRIB: Sendable {
    /// Up to this many next hops per prefix (≥ 1).
    public let multipath: Int
    /// Adj-RIB-In: prefix → peer address → route.
    public private(set) var routes: [IPv4Prefix: [IPv4Address: BGPRoute]] = [:]
    /// The installed selection: prefix → next hops (best first).
    public private(set) var fib: [IPv4Prefix: [IPv4Address]] = [:]

    public init(multipath: Int = 1) {
        precondition(multipath >= 1, "multipath \(multipath) < 1")
        self.multipath = multipath
    }

    /// Applies what a session reported (`.routes` and `.peerDown`; other
    /// actions change nothing) and returns the FIB changes, sorted by prefix.
    public mutating func apply(_ action: BGPAction) -> [BGPFIBChange] {
        switch action {
        case .routes(let peer, let announced, let withdrawn):
            var touched = Set<IPv4Prefix>()
            for p in withdrawn where routes[p]?[peer] != nil {
                routes[p]![peer] = nil
                if routes[p]!.isEmpty { routes[p] = nil }
                touched.insert(p)
            }
            for r in announced {
                routes[r.prefix, default: [:]][r.peer] = r
                touched.insert(r.prefix)
            }
            return reselect(touched)
        case .peerDown(let peer):
            return dropPeer(peer)
        default:
            return []
        }
    }

    /// Forgets every route from `peer` (its session dropped).
    public mutating func dropPeer(_ peer: IPv4Address) -> [BGPFIBChange] {
        var touched = Set<IPv4Prefix>()
        for (p, byPeer) in routes where byPeer[peer] != nil {
            routes[p]![peer] = nil
            if routes[p]!.isEmpty { routes[p] = nil }
            touched.insert(p)
        }
        return reselect(touched)
    }

    /// The routes for `prefix`, most preferred first.
    public func candidates(_ prefix: IPv4Prefix) -> [BGPRoute] {
        (routes[prefix].map { Array($0.values) } ?? []).sorted { Self.preference($0).lexicographicallyPrecedes(Self.preference($1)) }
    }

    /// The best route for `prefix`.
    public func best(_ prefix: IPv4Prefix) -> BGPRoute? { candidates(prefix).first }

    /// Steps 1–5 of the decision (lower is better); routes with equal keys
    /// share an ECMP group.
    static func pathKey(_ r: BGPRoute) -> [UInt64] {
        let a = r.attributes
        return [UInt64(UInt32.max - (a.localPref ?? 100)), UInt64(a.asPathLength), UInt64(a.origin?.rawValue ?? 2),
                UInt64(a.multiExitDisc ?? 0), r.isExternal ? 0 : 1]
    }

    static func preference(_ r: BGPRoute) -> [UInt64] {
        pathKey(r) + [UInt64(r.peerRouterID.rawValue), UInt64(r.peer.rawValue)]
    }

    /// The next hops the selection gives `prefix` now.
    public func selection(_ prefix: IPv4Prefix) -> [IPv4Address] {
        let sorted = candidates(prefix)
        guard let best = sorted.first else { return [] }
        let key = Self.pathKey(best)
        var hops: [IPv4Address] = []
        for r in sorted where Self.pathKey(r) == key {
            guard let hop = r.nextHop, !hops.contains(hop) else { continue }
            hops.append(hop)
            if hops.count == multipath { break }
        }
        return hops
    }

    mutating func reselect(_ prefixes: Set<IPv4Prefix>) -> [BGPFIBChange] {
        var changes: [BGPFIBChange] = []
        for p in prefixes.sorted(by: { ($0.network, $0.length) < ($1.network, $1.length) }) {
            let hops = selection(p)
            if hops != (fib[p] ?? []) {
                fib[p] = hops.isEmpty ? nil : hops
                changes.append(BGPFIBChange(prefix: p, nextHops: hops))
            }
        }
        return changes
    }
}

extension BGPFIBChange {
    /// The router's route for this change: `prefix` via the next hops, each
    /// with the port `port(gateway)` names (the port of the connected route
    /// holding it); next hops without a port are left out. Nil: remove
    /// `prefix` from the table (no next hops, or none reachable).
    public func routeEntry(port: (IPv4Address) -> PortID?) -> RouteEntry? {
        let hops = nextHops.compactMap { gateway in port(gateway).map { RouteEntry.NextHop(gateway: gateway, port: $0) } }
        return hops.isEmpty ? nil : .via(prefix, hops)
    }

    /// Applies this change to a router's table (insert or remove).
    public func apply(to table: inout RoutingTable, port: (IPv4Address) -> PortID?) {
        if let entry = routeEntry(port: port) { table.insert(entry) } else { table.remove(prefix) }
    }
}
