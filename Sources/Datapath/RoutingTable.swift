import Wire

/// A route in a router's FIB, as the control plane writes it: a destination
/// prefix and what to do with packets for it.
public struct RouteEntry: Equatable, Sendable, CustomStringConvertible {
    public struct NextHop: Equatable, Hashable, Sendable, CustomStringConvertible {
        public var gateway: IPv4Address
        public var port: PortID
        public init(gateway: IPv4Address, port: PortID) {
            self.gateway = gateway
            self.port = port
        }
        public var description: String { "\(gateway) (\(port))" }
    }

    public enum Kind: Equatable, Sendable {
        /// One of the router's own addresses: deliver locally.
        case local
        /// The directed broadcast address of a connected subnet: never
        /// forwarded (RFC 2644), never answered.
        case broadcast
        /// The destination is on the link behind `port`: its own address is
        /// the next hop.
        case connected(PortID)
        /// Through one or more gateways (several = ECMP, picked by flow hash).
        case via([NextHop])
    }

    public var destination: IPv4Prefix
    public var kind: Kind

    public init(destination: IPv4Prefix, kind: Kind) {
        if case let .via(hops) = kind { precondition(!hops.isEmpty, "a gateway route needs a next hop") }
        self.destination = destination.canonical
        self.kind = kind
    }

    public static func connected(_ prefix: IPv4Prefix, port: PortID) -> RouteEntry {
        RouteEntry(destination: prefix, kind: .connected(port))
    }

    public static func via(_ prefix: IPv4Prefix, _ hops: [NextHop]) -> RouteEntry {
        RouteEntry(destination: prefix, kind: .via(hops))
    }

    public static func local(_ address: IPv4Address) -> RouteEntry {
        RouteEntry(destination: IPv4Prefix(address: address, length: 32), kind: .local)
    }

    public static func broadcast(_ address: IPv4Address) -> RouteEntry {
        RouteEntry(destination: IPv4Prefix(address: address, length: 32), kind: .broadcast)
    }

    /// The gateways of a `via` route (empty otherwise).
    public var nextHops: [NextHop] {
        if case let .via(hops) = kind { return hops }
        return []
    }

    /// The port of a connected route.
    public var connectedPort: PortID? {
        if case let .connected(port) = kind { return port }
        return nil
    }

    public var isConnected: Bool { connectedPort != nil }

    public var description: String {
        switch kind {
        case .local: "\(destination) local"
        case .broadcast: "\(destination) broadcast"
        case let .connected(port): "\(destination) connected (\(port))"
        case let .via(hops): "\(destination) via " + hops.map(\.description).joined(separator: ", ")
        }
    }
}

/// Longest-prefix-match FIB: one hash map per prefix length, searched from
/// the longest length present down (at most 33 probes, usually 2 or 3).
///
/// The control plane inserts `RouteEntry` values; the table compiles them
/// into plain `Match` values and one flat array of next hops, so a lookup on
/// the hot path copies no array and retains nothing. Routes through a port
/// whose link is down (`setLink(_:up:)`) are left out of the compiled table:
/// an ECMP group shrinks to its live next hops, and a route with none left
/// disappears (a shorter prefix, if any, takes over).
public struct RoutingTable: Sendable {
    /// The result of a lookup: what to do, and for gateway routes which
    /// slice of `hops` holds the (live) next hops.
    public struct Match: Equatable, Sendable {
        public enum Action: UInt8, Sendable {
            case local, broadcast, connected, gateway
        }
        public var action: Action
        /// The egress port of a connected route.
        public var port: PortID
        @usableFromInline var hopStart: Int32
        @usableFromInline var hopCount: Int32
        /// The matching prefix length, in bits.
        public var prefixLength: Int

        /// Number of next hops of a gateway route (0 otherwise).
        @inlinable public var nextHopCount: Int { Int(hopCount) }
    }

    /// The routes as inserted (source of truth for the control plane).
    public private(set) var routes: [IPv4Prefix: RouteEntry] = [:]
    @usableFromInline var byLength: [AddressMap<Match>] = Array(repeating: AddressMap(), count: 33)
    /// Prefix lengths that hold at least one route, longest first.
    @usableFromInline var lengths: [Int] = []
    @usableFromInline var hops: ContiguousArray<RouteEntry.NextHop> = []
    /// Ports whose link is down.
    public private(set) var downPorts: Set<PortID> = []
    /// Next hops of gateway routes in the compiled table (those through a
    /// down port are left out): an ECMP group of two with one link down
    /// counts one.
    public var liveNextHopCount: Int { hops.count }

    public init() {}

    /// Adds or replaces the route for `entry.destination`.
    public mutating func insert(_ entry: RouteEntry) {
        routes[entry.destination] = entry
        compile()
    }

    /// Adds or replaces several routes, compiling once.
    public mutating func insert(contentsOf entries: some Sequence<RouteEntry>) {
        for entry in entries { routes[entry.destination] = entry }
        compile()
    }

    public mutating func remove(_ prefix: IPv4Prefix) {
        routes[prefix.canonical] = nil
        compile()
    }

    /// Marks a port's link up or down and recompiles.
    public mutating func setLink(_ port: PortID, up: Bool) {
        if up { downPorts.remove(port) } else { downPorts.insert(port) }
        compile()
    }

    /// Changes on every change of the table (the fast path's entries
    /// rest on it: `Element.fastPathGeneration`).
    public private(set) var generation: UInt32 = 0

    mutating func compile() {
        generation &+= 1
        var byLength: [AddressMap<Match>] = Array(repeating: AddressMap(), count: 33)
        var hops: ContiguousArray<RouteEntry.NextHop> = []
        for (prefix, entry) in routes {
            let match: Match
            switch entry.kind {
            case .local:
                match = Match(action: .local, port: PortID(0), hopStart: 0, hopCount: 0, prefixLength: prefix.length)
            case .broadcast:
                match = Match(action: .broadcast, port: PortID(0), hopStart: 0, hopCount: 0, prefixLength: prefix.length)
            case let .connected(port):
                guard !downPorts.contains(port) else { continue }
                match = Match(action: .connected, port: port, hopStart: 0, hopCount: 0, prefixLength: prefix.length)
            case let .via(group):
                let live = group.filter { !downPorts.contains($0.port) }
                guard !live.isEmpty else { continue }
                match = Match(action: .gateway, port: live[0].port, hopStart: Int32(hops.count),
                              hopCount: Int32(live.count), prefixLength: prefix.length)
                hops.append(contentsOf: live)
            }
            byLength[prefix.length].insert(prefix.network.rawValue, match)
        }
        self.byLength = byLength
        self.hops = hops
        self.lengths = (0...32).reversed().filter { !byLength[$0].isEmpty }
    }

    /// The longest-prefix match for `address`, or nil (no route).
    @inlinable public func lookup(_ address: IPv4Address) -> Match? {
        // An index loop, not `for in`: unspecialised (-Onone) iterators
        // allocate, and the simulator runs debug builds too.
        var i = 0
        while i < lengths.count {
            let length = lengths[i]
            let mask: UInt32 = length == 0 ? 0 : UInt32.max << UInt32(32 - length)
            if let match = byLength[length][address.rawValue & mask] { return match }
            i &+= 1
        }
        return nil
    }

    /// The next hop of a gateway match for a flow with hash `hash`: hash-
    /// threshold selection (RFC 2992, as Linux does), so each next hop owns
    /// one contiguous range of the hash space.
    @inlinable public func nextHop(_ match: Match, hash: UInt32) -> RouteEntry.NextHop {
        let index = Int((UInt64(hash) &* UInt64(UInt32(truncatingIfNeeded: match.hopCount))) >> 32)
        return hops[Int(match.hopStart) &+ index]
    }

    /// The route that `lookup` would use, as the control plane wrote it
    /// (for `status` and `walk`).
    public func route(for address: IPv4Address) -> RouteEntry? {
        guard let match = lookup(address) else { return nil }
        let mask: UInt32 = match.prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - match.prefixLength)
        return routes[IPv4Prefix(address: IPv4Address(rawValue: address.rawValue & mask), length: match.prefixLength)]
    }

    /// Every route, longest prefix first, then by network.
    public var entries: [RouteEntry] {
        routes.values.sorted {
            $0.destination.length != $1.destination.length
                ? $0.destination.length > $1.destination.length
                : $0.destination.network < $1.destination.network
        }
    }
}

/// Which header fields feed the ECMP hash.
public struct ECMPHashFields: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let sourceAddress = ECMPHashFields(rawValue: 1)
    public static let destinationAddress = ECMPHashFields(rawValue: 2)
    public static let protocolNumber = ECMPHashFields(rawValue: 4)
    public static let sourcePort = ECMPHashFields(rawValue: 8)
    public static let destinationPort = ECMPHashFields(rawValue: 16)
    public static let threeTuple: ECMPHashFields = [.sourceAddress, .destinationAddress, .protocolNumber]
    public static let fiveTuple: ECMPHashFields = [.sourceAddress, .destinationAddress, .protocolNumber, .sourcePort, .destinationPort]

    /// The set of the fields a topology file lists (order and repeats do
    /// not matter to the hash).
    public init(_ fields: some Sequence<ECMPHashField>) {
        self = []
        for field in fields {
            switch field {
            case .srcIP: insert(.sourceAddress)
            case .dstIP: insert(.destinationAddress)
            case .proto: insert(.protocolNumber)
            case .srcPort: insert(.sourcePort)
            case .dstPort: insert(.destinationPort)
            }
        }
    }
}

/// The flow hash that picks one of several equal next hops: the same flow
/// always hashes the same, so it always takes one path.
public struct FlowHasher: Sendable {
    public var fields: ECMPHashFields
    public var seed: UInt32

    public init(fields: ECMPHashFields = .fiveTuple, seed: UInt32 = 0) {
        self.fields = fields
        self.seed = seed
    }

    @inlinable public func hash(source: IPv4Address, destination: IPv4Address, protocolNumber: UInt8,
                                sourcePort: UInt16, destinationPort: UInt16) -> UInt32 {
        hash(fields, source: source, destination: destination, protocolNumber: protocolNumber,
             sourcePort: sourcePort, destinationPort: destinationPort)
    }

    /// The hash of a packet as a router sees it: ports only when the packet
    /// has them (a TCP/UDP header) and is not a fragment. Every fragment of
    /// a datagram, the first included, hashes on addresses and protocol
    /// only, so all of them take one path; the price is that a fragmented
    /// datagram may take a different path than the unfragmented packets of
    /// the same 5-tuple flow.
    @inlinable public func hash(_ p: ParsedFrame) -> UInt32 {
        var fields = self.fields
        if p.isFragment || !p.hasPorts { fields.subtract([.sourcePort, .destinationPort]) }
        return hash(fields, source: p.sourceIPv4, destination: p.destinationIPv4,
                    protocolNumber: p.protocol.rawValue, sourcePort: p.sourcePort, destinationPort: p.destinationPort)
    }

    @inlinable func hash(_ fields: ECMPHashFields, source: IPv4Address, destination: IPv4Address,
                         protocolNumber: UInt8, sourcePort: UInt16, destinationPort: UInt16) -> UInt32 {
        var h = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15
        if fields.contains(.sourceAddress) { h = Self.mix(h ^ UInt64(source.rawValue)) }
        if fields.contains(.destinationAddress) { h = Self.mix(h ^ (UInt64(destination.rawValue) << 32)) }
        if fields.contains(.protocolNumber) { h = Self.mix(h ^ UInt64(protocolNumber)) }
        if fields.contains(.sourcePort) { h = Self.mix(h ^ (UInt64(sourcePort) << 16)) }
        if fields.contains(.destinationPort) { h = Self.mix(h ^ (UInt64(destinationPort) << 40)) }
        return UInt32(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// splitmix64's finaliser: every input bit affects every output bit.
    @inlinable static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
