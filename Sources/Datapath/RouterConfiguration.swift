import Wire

extension Router {
    /// Everything a router needs, built by the lab from the topology file
    /// (`kind: router` node): its interfaces in port order, static routes,
    /// ECMP hashing, static NAT, ARP and ICMP limits.
    public struct Configuration: Sendable, Equatable {
        /// One interface = one port, numbered in array order.
        public typealias Interface = PortConfiguration

        /// A static route. Several gateways make an ECMP group; each gateway
        /// must be inside a connected subnet, which gives its port.
        public struct Route: Sendable, Equatable {
            public var destination: IPv4Prefix
            public var gateways: [IPv4Address]

            public init(destination: IPv4Prefix, gateways: [IPv4Address]) {
                self.destination = destination
                self.gateways = gateways
            }

            public init(destination: IPv4Prefix, gateway: IPv4Address) {
                self.init(destination: destination, gateways: [gateway])
            }
        }

        /// A static 1:1 NAT pair (topology `nat: [{ public, private }]`):
        /// packets to `publicAddress` are sent on to `privateAddress`, and
        /// packets from `privateAddress` leave with `publicAddress` as their
        /// source. If a connected subnet holds `publicAddress`, the router
        /// answers ARP for it on that port.
        public struct NATRule: Sendable, Equatable {
            public var publicAddress: IPv4Address
            public var privateAddress: IPv4Address

            public init(public publicAddress: IPv4Address, private privateAddress: IPv4Address) {
                self.publicAddress = publicAddress
                self.privateAddress = privateAddress
            }
        }

        /// A token bucket for the ICMP errors the router sends (echo replies
        /// are not limited), like Linux' `icmp_msgs_per_sec`/`icmp_msgs_burst`.
        public struct ICMPRateLimit: Sendable, Equatable {
            /// Tokens added per second.
            public var perSecond: Double
            /// Bucket size: errors sent back to back at most.
            public var burst: Int

            public init(perSecond: Double, burst: Int) {
                self.perSecond = perSecond
                self.burst = burst
            }

            /// Linux' defaults: 1000 per second, bursts of 50.
            public static let linux = ICMPRateLimit(perSecond: 1000, burst: 50)
        }

        public var interfaces: [Interface]
        public var routes: [Route]
        /// Which fields the ECMP flow hash covers (topology: configurable
        /// fields and seed; default the 5-tuple).
        public var ecmpFields: ECMPHashFields
        public var ecmpSeed: UInt32
        public var nat: [NATRule]
        public var arp: ARPCache.Configuration
        /// nil: no limit (tests, deterministic sims).
        public var icmpRateLimit: ICMPRateLimit?
        /// Send ICMP host unreachable for each packet dropped when ARP gives
        /// up on its next hop (RFC 1812 §4.3.3.1 says "should").
        public var sendsHostUnreachable: Bool
        /// VRRP groups: their VIPs are answered (ARP, echo) only while master.
        public var vrrp: [VRRPConfiguration] = []
        /// The node's kernel owns TCP and UDP to the router's addresses (its
        /// BGP sessions and BFD, `bgp:`): the element drops them silently
        /// instead of answering port unreachable. Over AF_XDP they reach the
        /// kernel through pass rules and never the element; over AF_PACKET
        /// the kernel gets its own copy.
        public var kernelOwnsTransport = false

        public init(interfaces: [Interface], routes: [Route] = [],
                    ecmpFields: ECMPHashFields = .fiveTuple, ecmpSeed: UInt32 = 0,
                    nat: [NATRule] = [], arp: ARPCache.Configuration = .forwarder,
                    icmpRateLimit: ICMPRateLimit? = .linux, sendsHostUnreachable: Bool = true) {
            self.interfaces = interfaces
            self.routes = routes
            self.ecmpFields = ecmpFields
            self.ecmpSeed = ecmpSeed
            self.nat = nat
            self.arp = arp
            self.icmpRateLimit = icmpRateLimit
            self.sendsHostUnreachable = sendsHostUnreachable
        }
    }

    /// Why a configuration was refused: what is wrong and what would be right.
    public enum ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
        case noInterfaces
        case badMTU(interface: String, mtu: Int)
        case badMAC(interface: String, mac: MACAddress)
        case duplicateAddress(IPv4Address)
        case routeWithoutGateway(IPv4Prefix)
        case gatewayNotOnLink(route: IPv4Prefix, gateway: IPv4Address)
        case gatewayIsLocal(route: IPv4Prefix, gateway: IPv4Address)
        case duplicateRoute(IPv4Prefix)
        case natAddressIsLocal(IPv4Address)
        case duplicateNAT(IPv4Address)
        case badICMPRateLimit
        case vrrpPortOutOfRange(UInt8)

        public var description: String {
            switch self {
            case .noInterfaces:
                "a router needs at least one interface"
            case let .badMTU(name, mtu):
                "interface \(name): MTU \(mtu) is outside 68...65535 (IPv4 needs at least 68)"
            case let .badMAC(name, mac):
                "interface \(name): MAC \(mac) is not a unicast address (use a non-zero address whose first octet is even)"
            case let .duplicateAddress(address):
                "address \(address) is configured twice; each interface address must be unique"
            case let .routeWithoutGateway(prefix):
                "route to \(prefix) has no gateway; give at least one `via` address"
            case let .gatewayNotOnLink(prefix, gateway):
                "route to \(prefix): gateway \(gateway) is not inside any interface's subnet; use an address on a connected link"
            case let .gatewayIsLocal(prefix, gateway):
                "route to \(prefix): gateway \(gateway) is the router's own address; use a neighbour's address"
            case let .duplicateRoute(prefix):
                "route to \(prefix) is given twice or repeats a connected subnet; give one route per prefix (several `via` for ECMP)"
            case let .natAddressIsLocal(address):
                "NAT address \(address) is one of the router's interface addresses; NAT addresses must belong to nobody else"
            case let .duplicateNAT(address):
                "NAT address \(address) appears in more than one rule; static NAT is 1:1"
            case .badICMPRateLimit:
                "ICMP rate limit needs a positive rate and a burst of at least 1"
            case let .vrrpPortOutOfRange(vrid):
                "vrrp group \(vrid) names a port the router does not have"
            }
        }
    }
}

/// What `Router.init` derives from a `Configuration` once.
struct RouterTables {
    var fibEntries: [RouteEntry] = []
    /// Per port: addresses the port answers ARP for (its own + proxied NAT
    /// public addresses in its subnets).
    var arpOwned: [[IPv4Address]] = []
    /// Per port: the source address of ICMP errors sent out of it.
    var errorSource: [IPv4Address] = []
    var natIn: [IPv4Address: IPv4Address] = [:]
    var natOut: [IPv4Address: IPv4Address] = [:]

    init(_ c: Router.Configuration) throws(Router.ConfigurationError) {
        guard !c.interfaces.isEmpty else { throw .noInterfaces }
        var local: Set<IPv4Address> = []
        var connected: [IPv4Prefix: PortID] = [:]
        var broadcasts: [IPv4Address] = []
        for (index, interface) in c.interfaces.enumerated() {
            let name = interface.name.isEmpty ? "port \(index)" : interface.name
            guard (68...65535).contains(interface.mtu) else { throw .badMTU(interface: name, mtu: interface.mtu) }
            guard !interface.mac.isMulticast, interface.mac != .zero else { throw .badMAC(interface: name, mac: interface.mac) }
            for prefix in interface.addresses {
                guard local.insert(prefix.address).inserted else { throw .duplicateAddress(prefix.address) }
                // Two interfaces in one subnet: the first one owns it. A /32
                // has no subnet besides the address itself (local).
                if prefix.length < 32, connected[prefix.canonical] == nil { connected[prefix.canonical] = PortID(index) }
                if prefix.length <= 30 { broadcasts.append(prefix.broadcast) }
            }
        }
        let firstAddress = c.interfaces.lazy.compactMap(\.addresses.first).first?.address ?? .any
        errorSource = c.interfaces.map { $0.addresses.first?.address ?? firstAddress }

        /// The port of the longest connected prefix holding `address`.
        func onLinkPort(_ address: IPv4Address) -> PortID? {
            connected.filter { $0.key.contains(address) }.max { $0.key.length < $1.key.length }?.value
        }

        for (prefix, port) in connected { fibEntries.append(.connected(prefix, port: port)) }
        for address in broadcasts where !local.contains(address) { fibEntries.append(.broadcast(address)) }
        for address in local { fibEntries.append(.local(address)) }

        var seen = Set(connected.keys)
        for route in c.routes {
            let prefix = route.destination.canonical
            guard !route.gateways.isEmpty else { throw .routeWithoutGateway(prefix) }
            guard seen.insert(prefix).inserted else { throw .duplicateRoute(prefix) }
            var hops: [RouteEntry.NextHop] = []
            for gateway in route.gateways {
                guard !local.contains(gateway) else { throw .gatewayIsLocal(route: prefix, gateway: gateway) }
                guard let port = onLinkPort(gateway) else { throw .gatewayNotOnLink(route: prefix, gateway: gateway) }
                hops.append(.init(gateway: gateway, port: port))
            }
            fibEntries.append(.via(prefix, hops))
        }

        arpOwned = c.interfaces.map { $0.addresses.map(\.address) }
        for rule in c.nat {
            for address in [rule.publicAddress, rule.privateAddress] where local.contains(address) {
                throw .natAddressIsLocal(address)
            }
            guard natIn[rule.publicAddress] == nil else { throw .duplicateNAT(rule.publicAddress) }
            guard natOut[rule.privateAddress] == nil else { throw .duplicateNAT(rule.privateAddress) }
            natIn[rule.publicAddress] = rule.privateAddress
            natOut[rule.privateAddress] = rule.publicAddress
            if let port = onLinkPort(rule.publicAddress) { arpOwned[port.rawValue].append(rule.publicAddress) }
        }
        if let limit = c.icmpRateLimit, !(limit.perSecond > 0 && limit.burst >= 1) { throw .badICMPRateLimit }
        // VRRP VIPs: local (echo) and answered by ARP on the group's port;
        // the router gates both on being master.
        for g in c.vrrp {
            guard arpOwned.indices.contains(g.port.rawValue) else { throw .vrrpPortOutOfRange(g.vrid) }
            for vip in g.vips where !local.contains(vip) {
                local.insert(vip)
                fibEntries.append(.local(vip))
                arpOwned[g.port.rawValue].append(vip)
            }
        }
    }
}
