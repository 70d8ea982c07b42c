import Wire

/// A route in a router's FIB: a destination prefix and either "connected"
/// (deliver to the destination itself on `port`) or one or more next hops
/// (several = ECMP).
public struct RouteEntry: Equatable, Sendable, CustomStringConvertible {
    public struct NextHop: Equatable, Sendable {
        public var gateway: IPv4Address
        public var port: PortID
        public init(gateway: IPv4Address, port: PortID) {
            self.gateway = gateway
            self.port = port
        }
    }

    public var destination: IPv4Prefix
    /// Empty for a connected route.
    public var nextHops: [NextHop]
    /// The port of a connected route.
    public var connectedPort: PortID?

    public static func connected(_ prefix: IPv4Prefix, port: PortID) -> RouteEntry {
        RouteEntry(destination: prefix.canonical, nextHops: [], connectedPort: port)
    }

    public static func via(_ prefix: IPv4Prefix, _ hops: [NextHop]) -> RouteEntry {
        precondition(!hops.isEmpty)
        return RouteEntry(destination: prefix.canonical, nextHops: hops, connectedPort: nil)
    }

    public var isConnected: Bool { nextHops.isEmpty }

    public var description: String {
        if let port = connectedPort { return "\(destination) connected (\(port))" }
        return "\(destination) via " + nextHops.map { "\($0.gateway) (\($0.port))" }.joined(separator: ", ")
    }
}

/// Longest-prefix-match table: one hash map per prefix length, searched from
/// the longest length present down. At most 33 probes, usually a handful.
public struct RoutingTable: Sendable {
    @usableFromInline var byLength: [[UInt32: RouteEntry]] = Array(repeating: [:], count: 33)
    /// Prefix lengths that hold at least one route, longest first.
    @usableFromInline var lengths: [Int] = []

    public init() {}

    /// Adds or replaces the route for `entry.destination`.
    public mutating func insert(_ entry: RouteEntry) {
        let p = entry.destination
        byLength[p.length][p.network.rawValue] = entry
        if !lengths.contains(p.length) {
            lengths.append(p.length)
            lengths.sort(by: >)
        }
    }

    public mutating func remove(_ prefix: IPv4Prefix) {
        byLength[prefix.length][prefix.canonical.network.rawValue] = nil
        if byLength[prefix.length].isEmpty { lengths.removeAll { $0 == prefix.length } }
    }

    @inlinable public func lookup(_ address: IPv4Address) -> RouteEntry? {
        for length in lengths {
            let mask: UInt32 = length == 0 ? 0 : UInt32.max << UInt32(32 - length)
            if let entry = byLength[length][address.rawValue & mask] { return entry }
        }
        return nil
    }

    public var entries: [RouteEntry] {
        lengths.flatMap { byLength[$0].values.sorted { $0.destination.network < $1.destination.network } }
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
    public static let fiveTuple: ECMPHashFields = [.sourceAddress, .destinationAddress, .protocolNumber, .sourcePort, .destinationPort]
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
