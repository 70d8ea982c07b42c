import Wire

// The packet side of the LVS director (DESIGN.md, "What each director mode
// must do to the packet"). DirectorCore decides (services, schedulers,
// connection table, persistence, FULLNAT ports); this element parses
// frames, asks it, and rewrites bytes in place:
//
//   mode     client → VIP, as sent on to the real          real → client
//   DR       MACs (src = director, dst = real), TTL − 1     bypasses the director
//   TUN      TTL − 1, then inside a new outer IPv4          bypasses the director
//            (proto 4) director → real, outer TTL = inner TTL
//   NAT      dst = real ip:port, TTL − 1                     src = VIP:port, TTL − 1
//   FULLNAT  src = local ip:port, dst = real ip:port, TTL−1  src = VIP:port, dst = client ip:port, TTL − 1
//
// Besides that the director owns addresses: its interface addresses, every
// VIP and every FULLNAT local address. It answers ARP and ICMP echo for all
// of them, resolves its next hops (reals, gateways) with a bounded queue
// like a router, sends ICMP errors (time exceeded, fragmentation needed,
// optionally port unreachable), and relays ICMP errors about a VIP's
// connections to their real (so PMTU discovery works through DR and TUN). It is not a general router: any
// other IPv4 packet is dropped as `not-for-us`.
//
// Files: this one (configuration, dispatch, the four modes), `+Neighbours`
// (routes, ARP, transmission, timers), `+ICMP` (echo, ICMP errors,
// fragmentation).

/// An LVS director node: load-balances TCP/UDP virtual services onto real
/// servers in DR, TUN, NAT or FULLNAT mode.
public final class Director: Element, VRRPNode {

    // MARK: Configuration

    /// One interface (port) of the director, in the node's interface order.
    public typealias Interface = PortConfiguration

    /// A static route. Connected routes come from the interfaces' addresses.
    /// Several routes with one destination (each via a gateway) are one
    /// ECMP group: a packet takes one of them by its flow hash, so a flow
    /// always takes one path.
    public struct Route: Hashable, Sendable {
        public var destination: IPv4Prefix
        /// The next hop; nil for a route straight onto `port`'s link.
        public var gateway: IPv4Address?
        /// The port; nil = the port whose connected subnet holds `gateway`.
        public var port: PortID?

        public init(_ destination: IPv4Prefix, via gateway: IPv4Address, port: PortID? = nil) {
            self.destination = destination
            self.gateway = gateway
            self.port = port
        }

        /// An on-link route: destinations in `destination` are neighbours on `port`.
        public init(_ destination: IPv4Prefix, onLink port: PortID) {
            self.destination = destination
            self.gateway = nil
            self.port = port
        }

        /// `default via GATEWAY`.
        public static func defaultRoute(via gateway: IPv4Address) -> Route {
            Route(IPv4Prefix(address: .any, length: 0), via: gateway)
        }
    }

    /// A virtual service and its reals, as the topology lists them.
    public struct Service: Hashable, Sendable {
        public var service: VirtualService
        public var reals: [RealServer]
        public init(_ service: VirtualService, reals: [RealServer]) {
            self.service = service
            self.reals = reals
        }
    }

    /// What happens to a TCP/UDP packet for a VIP on a port no service listens on.
    public enum UnknownPortPolicy: Hashable, Sendable {
        /// Drop it, counted as `lvs-no-service` (IPVS without a local listener; the default).
        case drop
        /// Also answer ICMP port unreachable (type 3 code 3) from the VIP,
        /// rate-limited like every ICMP error. (A host's TCP would send a
        /// RST; ICMP gives the client the same "refused" for both protocols.)
        case portUnreachable
    }

    public struct Configuration: Sendable {
        /// The ports, in the node's interface order.
        public var interfaces: [Interface]
        /// Static routes (at least a default route, usually).
        public var routes: [Route]
        /// Virtual services, added to the core in this order (`serviceIDs`).
        public var services: [Service]
        /// Connection table size, timeouts, IPVS switches, FULLNAT port range.
        public var core: DirectorCore.Configuration
        /// Neighbour cache lifetime, retries and queue bounds.
        public var arp: ARPCache.Configuration
        /// Seconds before a next hop's (real's, gateway's) ARP entry expires
        /// at which `tick` starts re-probing it (unicast, like Linux'
        /// NUD_PROBE), so a busy flow never waits for resolution.
        public var arpRefreshBefore: Double
        /// TTL of packets the director makes itself (ICMP errors).
        public var timeToLive: UInt8
        public var unknownPort: UnknownPortPolicy
        /// ICMP errors per second (token bucket; Linux' icmp_msgs_per_sec) …
        public var icmpErrorsPerSecond: Double
        /// … and the burst the bucket holds (icmp_msgs_burst).
        public var icmpErrorBurst: Double
        /// What picks one gateway of an ECMP group for a packet (see `Route`).
        public var ecmp: FlowHasher
        /// Connection sync with the other directors of a sync group (IPVS
        /// sync v1, `DirectorSync.swift`); nil = off, as in IPVS.
        public var sync: SyncConfiguration?
        /// VRRP groups: their VIPs are answered and served only while master.
        public var vrrp: [VRRPConfiguration] = []

        public init(interfaces: [Interface], routes: [Route] = [], services: [Service] = [],
                    core: DirectorCore.Configuration = .init(), arp: ARPCache.Configuration = .forwarder,
                    arpRefreshBefore: Double = 5, timeToLive: UInt8 = 64, unknownPort: UnknownPortPolicy = .drop,
                    icmpErrorsPerSecond: Double = 1000, icmpErrorBurst: Double = 50, ecmp: FlowHasher = FlowHasher(),
                    sync: SyncConfiguration? = nil) {
            self.interfaces = interfaces
            self.routes = routes
            self.services = services
            self.core = core
            self.arp = arp
            self.arpRefreshBefore = arpRefreshBefore
            self.timeToLive = timeToLive
            self.unknownPort = unknownPort
            self.icmpErrorsPerSecond = icmpErrorsPerSecond
            self.icmpErrorBurst = icmpErrorBurst
            self.ecmp = ecmp
            self.sync = sync
        }
    }

    /// Configuration mistakes; nothing is built.
    public enum ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
        case noInterfaces
        case interfaceWithoutAddress(PortID)
        case mtuOutOfRange(PortID, Int)
        /// 0.0.0.0, 255.255.255.255, multicast or loopback as an interface address, VIP or local address.
        case unusableAddress(IPv4Address)
        case portOutOfRange(PortID)
        /// A route's gateway is in no connected subnet.
        case gatewayNotOnLink(IPv4Address)
        /// An on-link route without a port.
        case routeWithoutPort(IPv4Prefix)
        /// DR sends to the real's MAC: the real must share a link with the director.
        case directRoutingRealNotOnLink(real: IPv4Address, service: IPv4Address)
        /// DR and TUN cannot change the port; the real must listen on the VIP's.
        case portMappingNeedsNAT(real: IPv4Address, port: UInt16, service: IPv4Address)
        case timeToLiveZero
        /// The connection table must hold 1 ... 2^31 − 2 entries.
        case connectionTableSize(Int)
        /// DirectorCore refused the service.
        case service(DirectorConfigurationError)
        /// `sync.port` is not one of the director's ports.
        case syncPortOutOfRange(PortID)

        public var description: String {
            switch self {
            case .noInterfaces: "a director needs at least one interface"
            case .interfaceWithoutAddress(let p): "interface \(p.rawValue) has no IPv4 address"
            case .mtuOutOfRange(let p, let m): "MTU \(m) of interface \(p.rawValue) outside 68...\(Director.maximumMTU)"
            case .unusableAddress(let a): "\(a) cannot be a director address (unspecified, broadcast, multicast or loopback)"
            case .portOutOfRange(let p): "route names \(p), which the director does not have"
            case .gatewayNotOnLink(let g): "gateway \(g) is in none of the director's subnets"
            case .routeWithoutPort(let d): "on-link route \(d) needs a port"
            case .directRoutingRealNotOnLink(let r, let s):
                "DR real \(r) of \(s) is not on a directly connected subnet (DR only rewrites MACs; use tun or nat)"
            case .portMappingNeedsNAT(let r, let p, let s):
                "real \(r):\(p) of \(s): DR and TUN cannot change the port (use nat or fullnat, or the service's port)"
            case .timeToLiveZero: "the TTL of generated packets must be at least 1"
            case .connectionTableSize(let n): "connection table size \(n) outside 1...\(Int32.max - 1)"
            case .service(let e): e.description
            case .syncPortOutOfRange(let p): "the sync interface is \(p), which the director does not have"
            }
        }
    }

    /// Largest MTU a port may have: a frame must fit an `Emitter` slot
    /// (queued frames and fragments leave through the emitter).
    public static let maximumMTU = Emitter.slotSize - 14

    /// Drop reasons of the director's own (besides `DropReason`'s and `Refusal`'s).
    public enum Reason {
        /// 802.1Q-tagged frames: the router's drop, one name for both ("vlan-tagged" before).
        public static let vlanTagged = DropReason.vlanUnsupported
        /// The director is IPv4-only (the router's drop).
        public static let ipv6Unsupported = DropReason.ipv6Unsupported
        /// A fragment for a VIP or local address: the director does not
        /// reassemble, and only the first fragment names the ports.
        public static let fragment = DropReason("lvs-fragment")
        /// Source is 0.0.0.0, broadcast, multicast, loopback, or one of the director's own addresses.
        public static let martianSource = DropReason("martian-source")
        /// ICMP to an owned address other than an echo request or, for a
        /// VIP, an error about one of its connections.
        public static let icmpUnhandled = DropReason("icmp-unhandled")
        /// Other traffic to an interface address (management, health
        /// checks): the run loop hands that to the node's kernel before the
        /// element sees it, if it wants it.
        public static let localUnhandled = DropReason("local-unhandled")
        /// TCP/UDP to a FULLNAT local address that no connection owns, or
        /// an ICMP error for a VIP about no live connection.
        public static let noConnection = DropReason("lvs-no-connection")
        /// A DR real (added at run time) that is not on a connected subnet.
        public static let realNotOnLink = DropReason("lvs-dr-real-not-on-link")
        /// Not enough headroom in the buffer for the IPIP header.
        public static let noHeadroom = DropReason("no-headroom")
        /// The same packet dropped because a bad ICMP checksum (echo requests are verified).
        static let badICMPChecksum = DropReason.malformed(WireError.badChecksum.reason)

        static let truncated = DropReason.malformed(WireError.truncated.reason)
        static let badVersion = DropReason.malformed(WireError.badVersion.reason)
        static let badHeaderLength = DropReason.malformed(WireError.badHeaderLength.reason)
        static let badLength = DropReason.malformed(WireError.badLength.reason)
        static let badChecksum = DropReason.malformed(WireError.badChecksum.reason)
        static let unsupported = DropReason.malformed(WireError.unsupported.reason)

        /// `DropReason.malformed(error.reason)` without building a string per packet.
        @inline(__always) static func malformed(_ error: WireError) -> DropReason {
            switch error {
            case .truncated: truncated
            case .badVersion: badVersion
            case .badHeaderLength: badHeaderLength
            case .badLength: badLength
            case .badChecksum: badChecksum
            case .unsupported: unsupported
            }
        }
    }

    /// What the element did, beyond its drops.
    public struct Counters: Equatable, Sendable {
        public var received: UInt64 = 0
        /// Client → real packets sent on (or queued for ARP), by mode.
        public var forwardedDR: UInt64 = 0
        public var forwardedTUN: UInt64 = 0
        public var forwardedNAT: UInt64 = 0
        public var forwardedFullNAT: UInt64 = 0
        /// Other packets through the director, routed unchanged but for the TTL.
        public var routed: UInt64 = 0
        /// Real → client packets translated back.
        public var repliesNAT: UInt64 = 0
        public var repliesFullNAT: UInt64 = 0
        public var arpRepliesSent: UInt64 = 0
        public var arpRequestsSent: UInt64 = 0
        /// Neighbour entries learned or refreshed.
        public var arpLearned: UInt64 = 0
        /// ARP from a neighbour claiming one of the director's addresses.
        public var addressConflicts: UInt64 = 0
        public var echoRepliesSent: UInt64 = 0
        public var icmpErrorsSent: UInt64 = 0
        /// ICMP errors not sent: the token bucket was empty.
        public var icmpErrorsRateLimited: UInt64 = 0
        /// ICMP errors not sent: no route back to the source.
        public var icmpErrorsUnroutable: UInt64 = 0
        /// ICMP errors for a VIP passed on to the real of the connection they are about.
        public var icmpErrorsRelayed: UInt64 = 0
        /// Datagrams too big for the egress MTU (DF clear) sent as fragments, and the fragments.
        public var fragmented: UInt64 = 0
        public var fragmentsSent: UInt64 = 0
        /// Frames held until their next hop resolved, and released when it did.
        public var queuedForResolution: UInt64 = 0
        public var releasedAfterResolution: UInt64 = 0
        /// Frames the director built (ICMP errors, fragments) that it could
        /// not queue for their next hop, counted in `drops` too (as
        /// `arp-queue-full`). With it, every drop counted is a frame that
        /// came in, a held frame, or one of these. (A built frame the
        /// emitter has no slot for is the runner's `emit-queue-full`.)
        public var builtFramesDropped: UInt64 = 0
        public init() {}
    }

    // MARK: State

    public let portCount: Int
    /// The control logic: services, reals, connections (for anything the
    /// pass-throughs below do not cover).
    public let core: DirectorCore
    /// The configuration as given to `init` (services added later with
    /// `addService` are in `serviceIDs` and `snapshot()`, not here).
    public let configuration: Configuration
    /// The services' ids in `configuration.services` order, then any added with `addService`.
    public private(set) var serviceIDs: [ServiceID] = []
    public internal(set) var drops = DropCounters()
    public internal(set) var counters = Counters()

    /// Hot copies of each port's configuration.
    struct PortInfo {
        var mac: MACAddress
        var mtu: Int
    }

    let parser = FrameParser()
    let ports: [PortInfo]
    /// Each port's addresses: the source towards a next hop, what is on-link.
    let addresses: InterfaceAddresses
    /// Connected and static routes.
    let fib: RoutingTable
    var owned: DirectorAddressTable
    var vips: [IPv4Address] = []
    /// VRRP groups (empty: none; then no packet pays for them).
    public var vrrp: VRRPGroups
    let hasVRRP: Bool
    var arp: ARPCache
    /// Next hops kept resolved by `tick` (reals' next hops and gateways).
    var keepFresh: [FreshNeighbour] = []
    /// One frame's worth of memory for frames the director builds (ICMP
    /// errors, fragments) before they are emitted or queued.
    let scratch: UnsafeMutableRawBufferPointer
    /// IPv4 identification of the datagrams the director originates (IPIP outer headers, ICMP errors).
    var identification: UInt16 = 0
    var icmpTokens: Double
    var icmpRefilled: UInt64 = 0
    /// Connection sync (nil: off); the core holds it too, to queue entries.
    let sync: SyncSender?
    /// Set when the last frame may be repeated by the fast path (`Director+FastPath.swift`).
    var fastPathCacheable = false

    struct FreshNeighbour {
        var address: IPv4Address
        var source: IPv4Address
        var lastRequest: UInt64?
    }

    public init(configuration: Configuration) throws(ConfigurationError) {
        guard !configuration.interfaces.isEmpty else { throw .noInterfaces }
        guard configuration.timeToLive > 0 else { throw .timeToLiveZero }
        let size = configuration.core.maxConnections
        guard size > 0 && size < Int(Int32.max) else { throw .connectionTableSize(size) }
        var ports: [PortInfo] = []
        var ownedEntries: [(UInt32, UInt8)] = []
        for (i, interface) in configuration.interfaces.enumerated() {
            guard !interface.addresses.isEmpty else { throw .interfaceWithoutAddress(PortID(i)) }
            guard (68...Self.maximumMTU).contains(interface.mtu) else { throw .mtuOutOfRange(PortID(i), interface.mtu) }
            for a in interface.addresses {
                guard Self.isUsable(a.address) else { throw .unusableAddress(a.address) }
                ownedEntries.append((a.address.rawValue, DirectorAddressTable.interface))
            }
            ports.append(PortInfo(mac: interface.mac, mtu: interface.mtu))
        }
        if let s = configuration.sync, !(0..<ports.count).contains(s.port.rawValue) {
            throw .syncPortOutOfRange(s.port)
        }
        self.ports = ports
        portCount = ports.count
        addresses = InterfaceAddresses(configuration.interfaces.map(\.addresses))
        fib = try Self.buildFIB(configuration, addresses: addresses)
        self.configuration = configuration
        core = DirectorCore(configuration: configuration.core)
        arp = ARPCache(configuration: configuration.arp)
        owned = DirectorAddressTable(ownedEntries)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Emitter.slotSize, alignment: 64)
        icmpTokens = configuration.icmpErrorBurst
        if let s = configuration.sync {
            let interface = configuration.interfaces[s.port.rawValue]
            sync = SyncSender(s, mac: interface.mac, source: interface.addresses[0].address, mtu: interface.mtu)
            core.syncSender = sync
        } else {
            sync = nil
        }
        for g in configuration.vrrp where !(0..<ports.count).contains(g.port.rawValue) { throw .portOutOfRange(g.port) }
        vrrp = VRRPGroups(configuration.vrrp, interfaces: configuration.interfaces)
        hasVRRP = !configuration.vrrp.isEmpty
        owned.insert(configuration.vrrp.flatMap { $0.vips.map { ($0.rawValue, DirectorAddressTable.gated) } })
        // (A throw from here on runs deinit, which frees `scratch`.)
        for s in configuration.services { _ = try addService(s) }
        rebuildKeepFresh()
    }

    deinit { scratch.deallocate() }

    static func isUsable(_ a: IPv4Address) -> Bool {
        !(a.isUnspecified || a == .broadcast || a.isMulticast || a.isLoopback)
    }

    // MARK: Control plane (lab daemon, health checks, `wirelab lvs`)

    /// Adds a virtual service (the director starts answering ARP for its
    /// VIP and local addresses at once).
    @discardableResult
    public func addService(_ s: Service) throws(ConfigurationError) -> ServiceID {
        let v = s.service
        guard Self.isUsable(v.address) else { throw .unusableAddress(v.address) }
        for l in v.localAddresses where !Self.isUsable(l) { throw .unusableAddress(l) }
        for real in s.reals {
            if (v.mode == .dr || v.mode == .tun), let p = real.port, p != v.port {
                throw .portMappingNeedsNAT(real: real.address, port: p, service: v.address)
            }
            if v.mode == .dr, route(real.address.rawValue).map({ $0.gateway != 0 }) ?? true {
                throw .directRoutingRealNotOnLink(real: real.address, service: v.address)
            }
        }
        let id: ServiceID
        do { id = try core.addService(v, reals: s.reals) } catch { throw .service(error) }
        serviceIDs.append(id)
        var entries: [(UInt32, UInt8)] = [(v.address.rawValue, DirectorAddressTable.virtual)]
        if !vips.contains(v.address) { vips.append(v.address) }
        for l in core.localAddresses { entries.append((l.rawValue, DirectorAddressTable.local)) }
        owned.insert(entries)
        rebuildKeepFresh()
        return id
    }

    /// The id of real `address`:`port` (nil: the service's port) of the
    /// service `proto` `vip`:`servicePort`, for `setWeight` / `setEnabled`.
    public func realServer(_ address: IPv4Address, port: UInt16? = nil, service vip: IPv4Address,
                           servicePort: UInt16, proto: TransportProtocol = .tcp) -> RealServerID? {
        guard let s = core.service(proto, address: vip, port: servicePort) else { return nil }
        return core.real(s, address: address, port: port ?? servicePort)
    }

    /// Sets a real's weight (0 = quiescent: no new connections, existing continue).
    public func setWeight(_ weight: Int, for real: RealServerID) throws(DirectorConfigurationError) {
        try core.setWeight(weight, for: real)
    }

    /// Health: a disabled real gets no new connections; existing ones continue.
    public func setEnabled(_ enabled: Bool, for real: RealServerID) throws(DirectorConfigurationError) {
        try core.setEnabled(enabled, for: real)
    }

    /// Services, reals, weights and counts (`wirelab lvs`, ipvsadm -Ln).
    public func snapshot() -> DirectorSnapshot { core.snapshot() }

    /// The connection table (ipvsadm -Lnc).
    public func connections(now: Instant) -> [DirectorSnapshot.Connection] { core.connections(now: now) }

    /// The neighbour cache (ip neigh).
    public var neighbours: [IPv4Address: ARPCache.Entry] { arp.entries }

    /// The neighbour cache itself: its sizes and its ledger of held frames
    /// (`count`, `queuedFrames`, `counters`), without copying the entries.
    public var neighbourCache: ARPCache { arp }

    /// True while an address is being resolved (packets wait for ARP and
    /// `tick` has requests to retry): the simulator keeps its clock going.
    public var isResolving: Bool { !arp.pending.isEmpty }

    // MARK: Packet path

    @inline(__always)
    func drop(_ reason: DropReason) -> Verdict {
        drops.count(reason)
        return .drop(reason)
    }

    public static var prefetchesBatches: Bool { true }

    /// Stage 0: the connection's index slot; stage 1: the entry it points
    /// at — of the inbound index for a packet to a VIP, of the reply index
    /// for one that may be a real's reply (NAT: to a client; FULLNAT: to a
    /// local address). Reads only the fixed IPv4/TCP/UDP header fields.
    public func prefetch(_ frame: UnsafeRawBufferPointer, stage: Int) {
        // Untagged IPv4 with the transport ports in the frame; views without
        // validation: a hint reads only what the length check covers.
        guard frame.count >= 38, EthernetHeader(unchecked: frame).etherType == .ipv4 else { return }
        let ip = IPv4Header(unchecked: frame.wireSlice(14..<frame.count))
        let ihl = ip.headerLength, proto = ip.protocol.rawValue
        guard ip.version == 4, proto == IPProtocol.tcp.rawValue || proto == IPProtocol.udp.rawValue, ihl >= 20, frame.count >= 14 + ihl + 4 else { return }
        let source = ip.sourceAddress.rawValue, destination = ip.destinationAddress.rawValue
        let ports = UDPHeader(unchecked: frame.wireSlice(14 + ihl..<frame.count))   // TCP's ports sit where UDP's do
        let sourcePort = ports.sourcePort, destinationPort = ports.destinationPort
        let kind = owned.lookup(destination)
        let table = core.table
        if kind & DirectorAddressTable.virtual != 0 {
            if stage == 0 {
                table.prefetchInboundSlot(proto: proto, client: source, clientPort: sourcePort, virtual: destination,
                                          virtualPort: destinationPort)
            } else {
                table.prefetchInboundEntry(proto: proto, client: source, clientPort: sourcePort, virtual: destination,
                                           virtualPort: destinationPort)
            }
        } else if kind == 0 || kind & DirectorAddressTable.local != 0 {
            if stage == 0 {
                table.prefetchReplySlot(proto: proto, real: source, realPort: sourcePort, destination: destination,
                                        destinationPort: destinationPort)
            } else {
                table.prefetchReplyEntry(proto: proto, real: source, realPort: sourcePort, destination: destination,
                                         destinationPort: destinationPort)
            }
        }
    }

    public func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        let verdict = processFrame(&packet, from: port, now: now, emit: &emit)
        // Sync messages the packet filled (or whose deadline passed) leave now.
        if sync != nil { flushSync(now: now, emit: &emit) }
        return verdict
    }

    @inline(__always)
    func processFrame(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        counters.received &+= 1
        let ingress = port.rawValue
        guard ingress >= 0 && ingress < portCount else { return drop(.notForUs) }
        var p: ParsedFrame
        do { p = try parser.parse(packet.readOnly) } catch { return drop(Reason.malformed(error)) }
        if p.hasVLANTag { return drop(Reason.vlanTagged) }
        switch p.etherType.rawValue {
        case EtherType.ipv4.rawValue:
            if hasVRRP && VRRPGroups.isAdvert(p) {
                if let reason = vrrp.receive(packet.readOnly, p, port: ingress, now: now, emit: &emit) { return drop(reason) }
                return .consumed
            }
        case EtherType.arp.rawValue: return arpInput(p, &packet, ingress: ingress, now: now, emit: &emit)
        case EtherType.ipv6.rawValue: return drop(Reason.ipv6Unsupported)
        default: return drop(.unknownEtherType)
        }
        guard p.destinationMAC == ports[ingress].mac || (hasVRRP && vrrp.accepts(p.destinationMAC, port: ingress)) else {
            if sync != nil, let verdict = syncInput(p, packet, ingress: ingress, now: now) { return verdict }
            return drop(.notForUs)
        }
        let source = p.sourceIPv4.rawValue
        if !Self.isUsable(p.sourceIPv4) || owned.lookup(source) != 0 { return drop(Reason.martianSource) }

        let kind = owned.lookup(p.destinationIPv4.rawValue)
        if kind == 0 { return transit(&p, &packet, now: now, emit: &emit) }
        if kind & DirectorAddressTable.gated != 0 && !vrrp.serves(p.destinationIPv4) { return drop(VRRPGroups.backup) }
        if p.isFragment { return drop(Reason.fragment) }
        if kind & DirectorAddressTable.virtual != 0 && p.hasPorts,
           let verdict = inbound(&p, &packet, kind: kind, now: now, emit: &emit) {
            return verdict
        }
        if p.protocol == .icmp {
            if p.hasTransportHeader && p.icmpType == 8 && p.icmpCode == 0 {
                return echoReply(p, &packet, ingress: ingress)
            }
            if p.hasTransportHeader && kind & DirectorAddressTable.virtual != 0 && Self.isRelayedICMPError(p.icmpType) {
                return relayICMPError(&p, &packet, now: now, emit: &emit)
            }
            return drop(Reason.icmpUnhandled)
        }
        if kind & DirectorAddressTable.local != 0 && p.hasPorts {
            return fullnatReply(&p, &packet, now: now, emit: &emit)
        }
        if kind & DirectorAddressTable.interface == 0 { return drop(Refusal.noService.dropReason) }
        return drop(Reason.localUnhandled)
    }

    /// A TCP/UDP packet for a VIP. nil: no service on that port and the
    /// address is also an interface or local address (handled as local).
    func inbound(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, kind: UInt8, now: Instant,
                 emit: inout Emitter) -> Verdict? {
        let proto: TransportProtocol = p.protocol == .tcp ? .tcp : .udp
        let vip = p.destinationIPv4
        // The director is a hop in every mode: a packet that would leave
        // with TTL 0 creates no connection.
        if p.timeToLive <= 1 && core.service(proto, address: vip, port: p.destinationPort) != nil {
            sendICMPError(type: 11, code: 0, rest: 0, about: p, packet.readOnly, from: nil, now: now, emit: &emit)
            return drop(.ttlExpired)
        }
        let d = core.schedule(proto, client: p.sourceIPv4, clientPort: p.sourcePort, virtual: vip,
                              virtualPort: p.destinationPort, tcpFlags: proto == .tcp ? p.tcpFlags.rawValue : 0, now: now)
        if case .refused(let refusal) = d.outcome {
            if refusal == .noService {
                if kind & (DirectorAddressTable.interface | DirectorAddressTable.local) != 0 { return nil }
                if configuration.unknownPort == .portUnreachable {
                    sendICMPError(type: 3, code: 3, rest: 0, about: p, packet.readOnly, from: vip, now: now, emit: &emit)
                }
            }
            return drop(refusal.dropReason)
        }
        let real = d.realAddress
        guard let hop = route(real.rawValue, flowOf: p) else { return drop(.noRoute) }
        switch d.mode {
        case .dr:
            // Only the MACs (and the TTL) change: the real must be a neighbour.
            guard hop.gateway == 0 else { return drop(Reason.realNotOnLink) }
            if let stop = fragmentationNeeded(p, packet.readOnly, hop: hop, growth: 0, now: now, emit: &emit) {
                return stop
            }
            p.decrementTimeToLive(in: packet.bytes)
            counters.forwardedDR &+= 1
            return noteRepeatable(transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit),
                                  existing: d.outcome == .existing)
        case .tun:
            // Read before `tunnel` changes the frame: only DF, unpadded frames are repeatable.
            let repeatable = d.outcome == .existing && Self.tunnelRepeatable(p, packet.readOnly)
            return noteRepeatable(tunnel(&p, &packet, real: real, hop: hop, now: now, emit: &emit), existing: repeatable)
        case .nat:
            if let stop = fragmentationNeeded(p, packet.readOnly, hop: hop, growth: 0, now: now, emit: &emit) {
                return stop
            }
            p.rewriteIPv4Destination(real, port: d.realPort, in: packet.bytes)
            p.decrementTimeToLive(in: packet.bytes)
            counters.forwardedNAT &+= 1
            return noteRepeatable(transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit),
                                  existing: d.outcome == .existing)
        case .fullnat:
            guard let local = d.localAddress, let localPort = d.localPort else { return drop(Reason.noConnection) }
            if let stop = fragmentationNeeded(p, packet.readOnly, hop: hop, growth: 0, now: now, emit: &emit) {
                return stop
            }
            p.rewriteIPv4Source(local, port: localPort, in: packet.bytes)
            p.rewriteIPv4Destination(real, port: d.realPort, in: packet.bytes)
            p.decrementTimeToLive(in: packet.bytes)
            counters.forwardedFullNAT &+= 1
            return noteRepeatable(transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit),
                                  existing: d.outcome == .existing)
        }
    }

    /// TUN: the datagram, its TTL one less (the header checksum updated
    /// incrementally), inside a new outer IPv4 header (protocol 4,
    /// director → real). As IPVS: `__ip_vs_get_out_rt` decrements the
    /// packet's TTL for every forwarding method (`decrement_ttl`), then
    /// `ip_vs_tunnel_xmit` copies it into the outer header; RFC 2003 §3.1
    /// asks the same of the encapsulator. DF and TOS copied from the inner
    /// header. The caller has answered TTL ≤ 1 already (time exceeded in
    /// `inbound`; a relayed ICMP error is dropped): here the TTL is ≥ 2.
    ///
    /// Identification: an outer datagram with DF is atomic (DF, no MF, offset
    /// 0), whose ID RFC 6864 §4.1 leaves meaningless, and gets 0 as Linux
    /// gives it (`ip_select_ident_segs` in include/net/ip.h: `iph->id = 0`
    /// for DF without a connected socket; IPVS's `ip_vs_tunnel_xmit` calls
    /// it with none); the fast path can repeat that, not a counter. Without
    /// DF the outer datagram may be fragmented on the way: it takes the
    /// director's counter (and such a forward cannot be repeated).
    func tunnel(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, real: IPv4Address, hop: DirectorNextHop,
                now: Instant, emit: inout Emitter) -> Verdict {
        if let stop = fragmentationNeeded(p, packet.readOnly, hop: hop, growth: IPIP.outerHeaderLength, now: now,
                                          emit: &emit) {
            return stop
        }
        let l3 = p.l3Offset
        let innerLength = p.ipLength
        let atomic = packet.bytes[l3 + 6] & 0x40 != 0   // the inner DF, copied to the outer header
        let timeToLive = p.decrementTimeToLive(in: packet.bytes)  // this hop, inside
        packet.length = l3 + innerLength  // Ethernet padding stays behind
        guard packet.insert(IPIP.outerHeaderLength, at: l3) else { return drop(Reason.noHeadroom) }
        if !atomic { identification &+= 1 }
        do {
            _ = try IPIP.encapsulate(packet.bytes, innerOffset: l3 + IPIP.outerHeaderLength,
                                     source: IPv4Address(rawValue: source(of: hop)), destination: real,
                                     timeToLive: timeToLive, identification: atomic ? 0 : identification)
        } catch {
            return drop(Reason.malformed(error))
        }
        counters.forwardedTUN &+= 1
        return transmit(&packet, ipLength: innerLength + IPIP.outerHeaderLength, hop: hop, now: now, emit: &emit)
    }

    /// Whether the fast path can repeat `tunnel`'s forward of P (FRAME as
    /// received), as `FastPathEntry.derive` takes it: DF set (the outer
    /// datagram is atomic, its identification 0 rather than the counter)
    /// and no Ethernet padding (which `tunnel` leaves behind). Whether the
    /// connection is established is the caller's.
    static func tunnelRepeatable(_ p: ParsedFrame, _ frame: UnsafeRawBufferPointer) -> Bool {
        frame[p.l3Offset + 6] & 0x40 != 0 && frame.count == p.l3Offset + p.ipLength
    }

    /// IPv4 not addressed to the director: a NAT reply (real → client) or not ours.
    func transit(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, now: Instant, emit: inout Emitter) -> Verdict {
        if p.hasPorts && !p.isFragment {
            let proto: TransportProtocol = p.protocol == .tcp ? .tcp : .udp
            let r = core.lookupReply(proto, from: p.sourceIPv4, fromPort: p.sourcePort, to: p.destinationIPv4,
                                     toPort: p.destinationPort, tcpFlags: proto == .tcp ? p.tcpFlags.rawValue : 0, now: now)
            if r.found && r.mode == .nat { return translateReply(&p, &packet, r, now: now, emit: &emit) }
        }
        return routeTransit(&p, &packet, now: now, emit: &emit)
    }

    /// Anything else addressed through the director is routed unchanged but
    /// for the TTL, as the Linux router under an IPVS director does: the
    /// director is its NAT reals' default gateway, and their own traffic
    /// (a ping to the client, a lookup) must get through.
    func routeTransit(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, now: Instant, emit: inout Emitter) -> Verdict {
        let hop: DirectorNextHop
        switch onward(p, packet, to: p.destinationIPv4.rawValue, now: now, emit: &emit) {
        case .success(let h): hop = h
        case .failure(let stop): return stop.verdict
        }
        p.decrementTimeToLive(in: packet.bytes)
        counters.routed &+= 1
        return transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit)
    }

    /// The checks every packet the director sends on unchanged in size
    /// makes: TTL left (else ICMP time exceeded), a route to `destination`,
    /// room in the egress MTU (else frag-needed or fragments).
    func onward(_ p: ParsedFrame, _ packet: PacketBuffer, to destination: UInt32, now: Instant,
                emit: inout Emitter) -> Result<DirectorNextHop, Stopped> {
        if p.timeToLive <= 1 {
            sendICMPError(type: 11, code: 0, rest: 0, about: p, packet.readOnly, from: nil, now: now, emit: &emit)
            return .failure(Stopped(verdict: drop(.ttlExpired)))
        }
        guard let hop = route(destination, flowOf: p) else { return .failure(Stopped(verdict: drop(.noRoute))) }
        if let stop = fragmentationNeeded(p, packet.readOnly, hop: hop, growth: 0, now: now, emit: &emit) {
            return .failure(Stopped(verdict: stop))
        }
        return .success(hop)
    }

    /// What `onward` decided instead of a next hop.
    struct Stopped: Error { var verdict: Verdict }

    /// FULLNAT: a real's reply to local address:port.
    func fullnatReply(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, now: Instant, emit: inout Emitter) -> Verdict {
        let proto: TransportProtocol = p.protocol == .tcp ? .tcp : .udp
        let r = core.lookupReply(proto, from: p.sourceIPv4, fromPort: p.sourcePort, to: p.destinationIPv4,
                                 toPort: p.destinationPort, tcpFlags: proto == .tcp ? p.tcpFlags.rawValue : 0, now: now)
        guard r.found, r.mode == .fullnat else { return drop(Reason.noConnection) }
        return translateReply(&p, &packet, r, now: now, emit: &emit)
    }

    /// NAT: src → VIP:port. FULLNAT: src → VIP:port, dst → client ip:port.
    /// Then on towards the client like any forwarded packet. (The reply has
    /// already moved its connection's state, even if it is now refused for
    /// its TTL or size: the real will send it again.)
    func translateReply(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, _ r: ReplyDecision, now: Instant,
                        emit: inout Emitter) -> Verdict {
        let hop: DirectorNextHop
        switch onward(p, packet, to: r.clientAddress.rawValue, now: now, emit: &emit) {
        case .success(let h): hop = h
        case .failure(let stop): return stop.verdict
        }
        p.rewriteIPv4Source(r.virtualAddress, port: r.virtualPort, in: packet.bytes)
        if r.mode == .fullnat {
            p.rewriteIPv4Destination(r.clientAddress, port: r.clientPort, in: packet.bytes)
            counters.repliesFullNAT &+= 1
        } else {
            counters.repliesNAT &+= 1
        }
        p.decrementTimeToLive(in: packet.bytes)
        return noteRepeatable(transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit), existing: true)
    }
}

/// Which addresses the director owns, and as what: an open-addressing hash
/// set of IPv4 addresses (0.0.0.0 marks a free slot; it is never owned)
/// with flags, so the per-packet test is a multiply and a probe or two.
struct DirectorAddressTable {
    static let interface: UInt8 = 1
    static let virtual: UInt8 = 2
    static let local: UInt8 = 4
    /// A VRRP VIP: owned only while the node is its group's master.
    static let gated: UInt8 = 8

    private(set) var keys: [UInt32]
    private(set) var kinds: [UInt8]
    private(set) var count = 0
    private var shift: UInt32

    init(_ entries: [(UInt32, UInt8)]) {
        keys = [UInt32](repeating: 0, count: 16)
        kinds = [UInt8](repeating: 0, count: 16)
        shift = 32 - 4
        insert(entries)
    }

    @inline(__always) func slot(_ address: UInt32) -> Int { Int((address &* 0x9E37_79B1) >> shift) }

    @inline(__always) func lookup(_ address: UInt32) -> UInt8 {
        let mask = keys.count - 1
        var i = slot(address)
        while true {
            let k = keys[i]
            if k == address { return kinds[i] }
            if k == 0 { return 0 }
            i = (i + 1) & mask
        }
    }

    /// Adds addresses (a kind is OR-ed into an address already present),
    /// growing so the table stays at most half full.
    mutating func insert(_ entries: [(UInt32, UInt8)]) {
        let wanted = (count + entries.count) * 2
        if wanted > keys.count {
            var size = keys.count
            while size < wanted { size <<= 1 }
            let old = zip(keys, kinds).filter { $0.0 != 0 }
            keys = [UInt32](repeating: 0, count: size)
            kinds = [UInt8](repeating: 0, count: size)
            shift = 32 - UInt32(size.trailingZeroBitCount)
            count = 0
            for (a, k) in old { put(a, k) }
        }
        for (a, k) in entries where a != 0 { put(a, k) }
    }

    private mutating func put(_ address: UInt32, _ kind: UInt8) {
        let mask = keys.count - 1
        var i = slot(address)
        while keys[i] != 0 && keys[i] != address { i = (i + 1) & mask }
        if keys[i] == 0 { count += 1 }
        keys[i] = address
        kinds[i] |= kind
    }
}
