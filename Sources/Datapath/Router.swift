import Wire

/// An IPv4 router (the parts of RFC 1812 a lab needs): ARP, the FIB
/// (`RoutingTable`: connected and static routes, ECMP by flow hash), ICMP
/// errors, echo replies for its own addresses, fragmentation, and static
/// 1:1 NAT (on every port; IP and TCP/UDP checksums updated incrementally,
/// packets quoted in ICMP errors translated too, RFC 5508, so traceroute
/// and PMTU discovery work through it). `process` reads in the order a
/// packet meets them: Ethernet, ARP, validation and martians, NAT in, FIB,
/// TTL, MTU, NAT out, next hop (or the ARP queue).
///
/// ICMP errors and echo replies go back out of the ingress port to the
/// neighbour that handed us the packet, not through the FIB: that neighbour
/// routes towards the source, and no ARP is needed (it differs from a FIB
/// lookup only on asymmetric paths). Errors follow RFC 1812 §4.3.2.7, come
/// from the ingress interface's first address, quote the header + 8 bytes
/// as the sender sent them (NAT undone), are atomic datagrams (DF set,
/// identification 0; RFC 6864) and pass a token bucket.
///
/// Not done: ICMP redirects, IP option processing (options are forwarded
/// untouched), reassembly of packets for the router itself, IPv6, VLANs.
/// Steady state allocates nothing (lookups return plain values, rewrites
/// are in place, built frames go to the emitter's slots); only packets
/// queued for ARP are copied onto the heap.
public final class Router: Element, VRRPNode {
    public struct Counters: Sendable, Equatable {
        /// Packets sent on towards their destination (in place, released
        /// from the ARP queue, or as fragments).
        public var forwarded: UInt64 = 0
        /// Echo requests to the router's own addresses answered.
        public var echoReplies: UInt64 = 0
        public var arpRequestsSent: UInt64 = 0
        public var arpRepliesSent: UInt64 = 0
        /// Packets that waited for ARP, and those the reply released.
        public var arpQueued: UInt64 = 0
        public var arpReleased: UInt64 = 0
        /// ICMP messages sent: errors and echo replies.
        public var icmpSent: UInt64 = 0
        /// ICMP errors the token bucket held back.
        public var icmpRateLimited: UInt64 = 0
        public var natIn: UInt64 = 0
        public var natOut: UInt64 = 0
        /// Fragments sent for packets larger than the egress MTU.
        public var fragmentsSent: UInt64 = 0
    }

    public let portCount: Int
    public let configuration: Configuration
    // `@exclusivity(unchecked)`: these are touched several times per packet,
    // and the dynamic exclusivity checks cost ~15% of the forwarding time.
    // No access to one of them overlaps another access to it (the closures
    // passed to `arp.expire`/`arp.enqueue` never touch `arp`).
    @exclusivity(unchecked) public internal(set) var counters = Counters()
    @exclusivity(unchecked) public internal(set) var drops = DropCounters()
    @exclusivity(unchecked) public internal(set) var fib = RoutingTable()
    @exclusivity(unchecked) public internal(set) var arp: ARPCache

    @usableFromInline let parser = FrameParser(verifiesIPv4Checksum: true)
    @usableFromInline let hasher: FlowHasher
    // Per port, in plain arrays of trivial values (no retain on access).
    @usableFromInline let portMACs: ContiguousArray<MACAddress>
    /// Per port: the neighbours ARP knew there when its link went down (`setLink`).
    var neighboursLost: [[IPv4Address]]
    @usableFromInline let portMTUs: ContiguousArray<Int>
    @usableFromInline let errorSource: ContiguousArray<IPv4Address>
    let portPrefixes: [[IPv4Prefix]]
    let arpOwned: [[IPv4Address]]
    @usableFromInline let natIn: AddressMap<IPv4Address>
    @usableFromInline let natOut: AddressMap<IPv4Address>
    @usableFromInline let hasNAT: Bool
    /// VRRP groups (empty: none; then no packet pays for them).
    public var vrrp: VRRPGroups
    @usableFromInline let hasVRRP: Bool
    // ICMP error token bucket.
    /// Set when `forwardIPv4` forwards a resolved frame (the fast path may repeat it).
    @exclusivity(unchecked) var fastPathCacheable = false
    @exclusivity(unchecked) var tokens: Double
    @exclusivity(unchecked) var tokensUpdated: Instant = .zero

    public init(configuration: Configuration) throws(ConfigurationError) {
        let tables = try RouterTables(configuration)
        self.configuration = configuration
        portCount = configuration.interfaces.count
        neighboursLost = Array(repeating: [], count: configuration.interfaces.count)
        arp = ARPCache(configuration: configuration.arp)
        hasher = FlowHasher(fields: configuration.ecmpFields, seed: configuration.ecmpSeed)
        portMACs = ContiguousArray(configuration.interfaces.map(\.mac))
        portMTUs = ContiguousArray(configuration.interfaces.map(\.mtu))
        portPrefixes = configuration.interfaces.map(\.addresses)
        errorSource = ContiguousArray(tables.errorSource)
        arpOwned = tables.arpOwned
        var natIn = AddressMap<IPv4Address>(minimumCapacity: tables.natIn.count)
        var natOut = AddressMap<IPv4Address>(minimumCapacity: tables.natOut.count)
        for (outside, inside) in tables.natIn { natIn.insert(outside.rawValue, inside) }
        for (inside, outside) in tables.natOut { natOut.insert(inside.rawValue, outside) }
        self.natIn = natIn
        self.natOut = natOut
        hasNAT = !tables.natIn.isEmpty
        vrrp = VRRPGroups(configuration.vrrp, interfaces: configuration.interfaces)
        hasVRRP = !configuration.vrrp.isEmpty
        tokens = Double(configuration.icmpRateLimit?.burst ?? 0)
        fib.insert(contentsOf: tables.fibEntries)
        configuredRoutes = Dictionary(tables.fibEntries.map { ($0.destination, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The table's routes as configured (connected, static), by prefix: what
    /// a learned route for the same prefix falls back to when it goes.
    let configuredRoutes: [IPv4Prefix: RouteEntry]

    /// Applies a BGP FIB change (control plane, never per packet): the
    /// prefix via its next hops, each on the port of the connected route
    /// that holds it; no next hops left (or none on a connected subnet):
    /// the learned route goes. A configured (connected or static) route for
    /// the same prefix wins, as its lower administrative distance does in
    /// other routers: the change is then ignored. Returns the route now in
    /// the table for the prefix (nil: none).
    @discardableResult
    public func applyLearnedRoute(_ change: BGPFIBChange) -> RouteEntry? {
        if let configured = configuredRoutes[change.prefix] { return configured }
        let entry = change.routeEntry { gateway in
            self.configuredRoutes.values.first { $0.isConnected && $0.destination.contains(gateway) }?.connectedPort
        }
        if let entry { fib.insert(entry) } else { fib.remove(change.prefix) }
        return entry
    }

    /// BFD on a static route (control plane, never per packet): of the
    /// configured route for `prefix`, only the next hops in `gateways` stay
    /// in its ECMP group; none: the route leaves the table until one
    /// returns. Returns the route now in the table (nil: none, or `prefix`
    /// is no configured gateway route).
    @discardableResult
    public func useStaticNextHops(_ prefix: IPv4Prefix, _ gateways: [IPv4Address]) -> RouteEntry? {
        guard let configured = configuredRoutes[prefix.canonical], !configured.nextHops.isEmpty else { return nil }
        let kept = configured.nextHops.filter { gateways.contains($0.gateway) }
        guard !kept.isEmpty else {
            fib.remove(prefix)
            return nil
        }
        let entry = RouteEntry.via(prefix, kept)
        fib.insert(entry)
        return entry
    }

    // MARK: The element contract

    public func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        let frame = packet.readOnly
        guard frame.count >= 14 else { return drop(Self.malformedTruncated) }
        guard port.rawValue >= 0 && port.rawValue < portCount else { return drop(.notForUs) }
        let destination = frame.wireMAC(0)
        let isBroadcast = destination.isBroadcast
        guard destination == portMACs[port.rawValue] || isBroadcast
                || (hasVRRP && acceptsForVRRP(destination, port: port))
        else { return drop(.notForUs) }
        switch frame.wireU16(EthernetHeader.Field.etherType) {
        case EtherType.ipv4.rawValue:
            guard !isBroadcast else { return drop(.notForUs) }
            let parsed: ParsedFrame
            do throws(WireError) {
                parsed = try parser.parse(frame)
            } catch {
                return drop(Self.malformed(error))
            }
            if hasVRRP && destination == VRRP.multicastMAC { return vrrpInput(frame, parsed, port: port, now: now, emit: &emit) }
            return forwardIPv4(&packet, parsed, from: port, now: now, emit: &emit)
        case EtherType.arp.rawValue:
            do throws(WireError) {
                _ = try parser.parse(frame)
            } catch {
                return drop(Self.malformed(error))
            }
            return receiveARP(frame, from: port, now: now, emit: &emit)
        case EtherType.vlan.rawValue, EtherType.qinq.rawValue:
            return drop(.vlanUnsupported)
        case EtherType.ipv6.rawValue:
            return drop(.ipv6Unsupported)
        default:
            return drop(.unknownEtherType)
        }
    }

    // VRRP, out of line: a router without it (or a frame not for it) pays
    // one flag test per frame, and `process` stays small enough to inline
    // its hot path as before.
    @inline(never)
    func acceptsForVRRP(_ destination: MACAddress, port: PortID) -> Bool {
        destination == VRRP.multicastMAC || vrrp.accepts(destination, port: port.rawValue)
    }

    @inline(never)
    func vrrpInput(_ frame: UnsafeRawBufferPointer, _ parsed: ParsedFrame, port: PortID, now: Instant,
                   emit: inout Emitter) -> Verdict {
        guard VRRPGroups.isAdvert(parsed) else { return drop(.notForUs) }
        if let reason = vrrp.receive(frame, parsed, port: port.rawValue, now: now, emit: &emit) { return drop(reason) }
        return .consumed
    }

    /// ARP retries and give-ups, expiry of ARP entries.
    /// The routes, the neighbours and the VRRP states (docs/fastpath.md).
    public var fastPathGeneration: UInt32 {
        fib.generation &+ arp.generation &+ UInt32(truncatingIfNeeded: vrrp.transitionCount)
    }

    public func takeFastPathCacheable() -> Bool {
        defer { fastPathCacheable = false }
        return fastPathCacheable
    }

    public func tick(now: Instant, emit: inout Emitter) {
        runARPTimers(now: now, emit: &emit)
        if hasVRRP { vrrp.tick(now: now, emit: &emit) }
    }

    func runARPTimers(now: Instant, emit: inout Emitter) {
        let sendsHostUnreachable = configuration.sendsHostUnreachable
        arp.expire(now: now, retry: { address, pending in
            sendARPRequest(for: address, on: pending.port, to: nil, emit: &emit)
        }, giveUp: { _, frames in
            for queued in frames {
                drops.count(.arpUnresolved)
                if sendsHostUnreachable { hostUnreachable(for: queued, now: now, emit: &emit) }
            }
        })
    }

    /// VRRP's centisecond timers (adverts, master down, gratuitous ARPs)
    /// and ARP's retries (`ARPCache.Configuration.forwarder`: 200 ms apart
    /// at first, which the 1 s tick could not keep).
    public var nextTimer: Instant? {
        let vrrpTimer = hasVRRP ? vrrp.nextTimer : nil
        guard let retry = arp.nextRequest else { return vrrpTimer }
        return vrrpTimer.map { min($0, retry) } ?? retry
    }

    public func fireTimers(now: Instant, emit: inout Emitter) {
        if hasVRRP { vrrp.tick(now: now, emit: &emit) }
        if let retry = arp.nextRequest, retry <= now { runARPTimers(now: now, emit: &emit) }
    }

    /// A port's link went down (or came back): routes through it leave the
    /// FIB (ECMP groups shrink to their other next hops), and what ARP knew
    /// or queued there is forgotten (queued packets count as `.linkDown`).
    public func setLink(_ port: PortID, up: Bool) {
        fib.setLink(port, up: up)
        if !up, port.rawValue >= 0 && port.rawValue < portCount {
            neighboursLost[port.rawValue] = arp.addresses(on: port, limit: Self.neighboursAskedBack)
            for _ in arp.flush(port: port) { drops.count(.linkDown) }
        }
    }

    /// Neighbours resolved on a port when its link went (at most this many
    /// per port), asked for again when it comes back.
    static let neighboursAskedBack = 64

    /// A port's link came back: every gateway of a route through it, and
    /// every neighbour ARP knew there when the link went, is asked for at
    /// once (ARP forgot them), so the first packets after the link returns
    /// find them resolved, or being resolved with quick retries, rather
    /// than start a resolution of their own. Returns how many were asked.
    @discardableResult
    public func resolveNextHops(on port: PortID, now: Instant, emit: inout Emitter) -> Int {
        guard port.rawValue >= 0 && port.rawValue < portCount else { return 0 }
        var asked = 0
        func ask(_ address: IPv4Address) {
            guard arp.solicit(address, port: port, now: now) else { return }
            sendARPRequest(for: address, on: port, to: nil, emit: &emit)
            asked += 1
        }
        for route in fib.entries {
            for hop in route.nextHops where hop.port == port { ask(hop.gateway) }
        }
        for address in neighboursLost[port.rawValue] { ask(address) }
        neighboursLost[port.rawValue] = []
        return asked
    }

    // MARK: Forwarding

    @inline(__always)
    func drop(_ reason: DropReason) -> Verdict {
        drops.count(reason)
        return .drop(reason)
    }

    func forwardIPv4(_ packet: inout PacketBuffer, _ parsed: ParsedFrame, from port: PortID, now: Instant,
                     emit: inout Emitter) -> Verdict {
        var p = parsed
        let bytes = packet.bytes
        let originalSource = p.sourceIPv4
        let originalDestination = p.destinationIPv4
        let s = originalSource.rawValue
        // 0.0.0.0, 127/8, 224/4 multicast, 240/4 class E and 255.255.255.255.
        if s == 0 || s >> 24 == 127 || s >> 28 >= 0xE { return drop(.martianSource) }
        let d = originalDestination.rawValue
        if d == 0 || d >> 24 == 127 || d >> 28 >= 0xE { return drop(.notForUs) }

        if hasNAT, let inside = natIn[originalDestination.rawValue] {
            p.rewriteIPv4Destination(inside, in: bytes)
            if p.protocol == .icmp { translateQuotedPacket(p, source: originalDestination, to: inside, in: bytes) }
            counters.natIn &+= 1
        }

        guard let route = fib.lookup(p.destinationIPv4) else {
            sendICMPError(.destinationUnreachable(code: ICMPv4Code.networkUnreachable, nextHopMTU: 0),
                          about: packet.readOnly, p, originalSource: originalSource,
                          originalDestination: originalDestination, on: port, to: p.sourceMAC, now: now, emit: &emit)
            return drop(.noRoute)
        }
        let egress: PortID
        let gateway: IPv4Address
        switch route.action {
        case .local:
            return deliverLocally(&packet, p, from: port, now: now, emit: &emit)
        case .broadcast:
            return drop(.notForUs)
        case .connected:
            egress = route.port
            gateway = p.destinationIPv4
        case .gateway:
            let hop = fib.nextHop(route, hash: hasher.hash(p))
            egress = hop.port
            gateway = hop.gateway
        }

        if p.timeToLive <= 1 {
            sendICMPError(.timeExceeded(code: ICMPv4Code.ttlExceeded), about: packet.readOnly, p,
                          originalSource: originalSource, originalDestination: originalDestination,
                          on: port, to: p.sourceMAC, now: now, emit: &emit)
            return drop(.ttlExpired)
        }
        let mtu = portMTUs[egress.rawValue]
        let tooBig = p.ipLength > mtu
        if tooBig && packet.readOnly[p.l3Offset + 6] & 0x40 != 0 {
            sendICMPError(.destinationUnreachable(code: ICMPv4Code.fragmentationNeeded, nextHopMTU: UInt16(mtu)),
                          about: packet.readOnly, p, originalSource: originalSource,
                          originalDestination: originalDestination, on: port, to: p.sourceMAC, now: now, emit: &emit)
            return drop(.fragmentationNeeded)
        }

        if hasNAT, let outside = natOut[p.sourceIPv4.rawValue] {
            let inside = p.sourceIPv4
            p.rewriteIPv4Source(outside, in: bytes)
            if p.protocol == .icmp { translateQuotedPacket(p, destination: inside, to: outside, in: bytes) }
            counters.natOut &+= 1
        } else if hasNAT, p.protocol == .icmp, translateQuotedPrivateDestination(p, in: bytes) {
            // An ICMP error from another inside host (e.g. a load balancer's
            // "fragmentation needed") about a packet that reached the inside
            // translated: the sender must see the public address it used.
            counters.natOut &+= 1
        }
        let previousHop = p.sourceMAC
        p.decrementTimeToLive(in: bytes)
        p.rewriteSourceMAC(portMACs[egress.rawValue], in: bytes)

        if let resolved = arp.resolve(gateway, now: now), resolved.entry.port == egress {
            let mac = resolved.entry.mac
            if resolved.needsRefresh { sendARPRequest(for: gateway, on: egress, to: mac, emit: &emit) }
            p.rewriteDestinationMAC(mac, in: bytes)
            if tooBig {
                return sendFragments(of: packet.readOnly, p, on: egress, destinationMAC: mac,
                                     sourceMAC: portMACs[egress.rawValue], emit: &emit) ? .consumed : drop(.wouldFragment)
            }
            counters.forwarded &+= 1
            fastPathCacheable = true
            return .forward(egress)
        }

        let result = arp.enqueue(for: gateway, port: egress, now: now) {
            ARPCache.QueuedFrame(bytes: Array(packet.readOnly), ingressPort: port, previousHop: previousHop,
                                 originalSource: originalSource, originalDestination: originalDestination)
        }
        switch result {
        case .sendRequest:
            sendARPRequest(for: gateway, on: egress, to: nil, emit: &emit)
            counters.arpQueued &+= 1
            return .consumed
        case .queued:
            counters.arpQueued &+= 1
            return .consumed
        case .full:
            return drop(.arpQueueFull)
        }
    }

    // MARK: Local delivery

    func deliverLocally(_ packet: inout PacketBuffer, _ p: ParsedFrame, from port: PortID, now: Instant,
                        emit: inout Emitter) -> Verdict {
        guard !p.isFragment else { return drop(.localUnsupported) }
        if hasVRRP && !vrrp.serves(p.destinationIPv4) { return drop(VRRPGroups.backup) }
        let frame = packet.readOnly
        switch p.protocol {
        case .icmp:
            guard p.icmpType == ICMPv4Type.echoRequest.rawValue, p.icmpCode == 0 else { return drop(.localUnsupported) }
            let message = UnsafeRawBufferPointer(rebasing: frame[p.l4Offset ..< p.l4Offset + p.l4Length])
            guard ICMPv4Header(unchecked: message).isChecksumValid else { return drop(Self.malformedChecksum) }
            answerEcho(&packet, p, from: port)
            counters.echoReplies &+= 1
            counters.icmpSent &+= 1
            return .forward(port)
        case .udp, .tcp:
            if configuration.kernelOwnsTransport { return drop(.localUnsupported) }
            sendICMPError(.destinationUnreachable(code: ICMPv4Code.portUnreachable, nextHopMTU: 0), about: frame, p,
                          originalSource: p.sourceIPv4, originalDestination: p.destinationIPv4,
                          on: port, to: p.sourceMAC, now: now, emit: &emit)
            return drop(.localUnsupported)
        default:
            sendICMPError(.destinationUnreachable(code: ICMPv4Code.protocolUnreachable, nextHopMTU: 0), about: frame, p,
                          originalSource: p.sourceIPv4, originalDestination: p.destinationIPv4,
                          on: port, to: p.sourceMAC, now: now, emit: &emit)
            return drop(.localUnsupported)
        }
    }

    /// Turns the echo request in `packet` into its reply, in place: MACs and
    /// addresses swapped, TTL 64, options removed (a reflected source route
    /// is a hazard), ICMP type 0 with the checksum updated incrementally.
    func answerEcho(_ packet: inout PacketBuffer, _ p: ParsedFrame, from port: PortID) {
        let optionsLength = p.ipHeaderLength - 20
        if optionsLength > 0 { packet.remove(optionsLength, at: p.l3Offset + 20) }
        let bytes = packet.bytes
        let l3 = p.l3Offset
        let ethernet = EthernetMutableHeader(unchecked: bytes)
        ethernet.destination = p.sourceMAC
        ethernet.source = portMACs[port.rawValue]
        let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: bytes[l3...]))
        ip.headerLength = 20
        ip.totalLength = p.ipLength - optionsLength
        ip.timeToLive = 64
        ip.sourceAddress = p.destinationIPv4
        ip.destinationAddress = p.sourceIPv4
        ip.fillChecksum()
        let l4 = l3 + 20
        let icmp = ICMPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: bytes[l4 ..< l4 + p.l4Length]))
        icmp.type = .echoReply
        icmp.checksum = InternetChecksum.update(icmp.checksum, old: UInt16(ICMPv4Type.echoRequest.rawValue) << 8,
                                                new: UInt16(ICMPv4Type.echoReply.rawValue) << 8)
    }

    // MARK: ARP

    func receiveARP(_ frame: UnsafeRawBufferPointer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        let arpPacket = ARPHeader(unchecked: UnsafeRawBufferPointer(rebasing: frame[14...]))
        let operation = arpPacket.operation
        guard operation == .request || operation == .reply else { return .consumed }
        let senderMAC = arpPacket.senderHardwareAddress
        let senderIP = arpPacket.senderProtocolAddress
        let targetIP = arpPacket.targetProtocolAddress
        guard !senderMAC.isMulticast, senderMAC != .zero else { return drop(.arpBadSender) }
        let index = port.rawValue
        var targetIsOurs = arpOwned[index].contains(targetIP)
        var sourceMAC = portMACs[index]
        // A VRRP VIP is ours only while master, on its group's port (with vmac: at the virtual MAC).
        if hasVRRP && targetIsOurs {
            if vrrp.answersARP(for: targetIP, on: port) { sourceMAC = vrrp.arpMAC(for: targetIP, default: sourceMAC) } else { targetIsOurs = false }
        }
        // A sender claiming one of our addresses is a conflict: neither
        // learned nor answered.
        guard !arpOwned[index].contains(senderIP) else { return .consumed }
        // Sender 0.0.0.0 is an RFC 5227 probe: answered, not learned.
        if senderIP != .any, portPrefixes[index].contains(where: { $0.contains(senderIP) }),
           targetIsOurs || senderIP == targetIP || arp.knows(senderIP) {
            learn(senderIP, mac: senderMAC, on: port, now: now, emit: &emit)
        }
        if operation == .request && targetIsOurs {
            emit.emit(on: port) { slot in
                EthernetRepr(destination: senderMAC, source: sourceMAC, etherType: .arp)
                    .emit(into: EthernetMutableHeader(unchecked: slot))
                ARPRepr(operation: .reply, senderHardwareAddress: sourceMAC, senderProtocolAddress: targetIP,
                        targetHardwareAddress: senderMAC, targetProtocolAddress: senderIP)
                    .emit(into: ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: slot[14..<42])))
                return 42
            }
            counters.arpRepliesSent &+= 1
        }
        return .consumed
    }

    /// Stores the mapping and sends what waited for it.
    func learn(_ address: IPv4Address, mac: MACAddress, on port: PortID, now: Instant, emit: inout Emitter) {
        guard let released = arp.learn(address, mac: mac, port: port, now: now) else { return }
        for queued in released {
            if let reason = transmit(queued.bytes, on: port, destinationMAC: mac, emit: &emit) {
                drops.count(reason)
            } else {
                counters.arpReleased &+= 1
            }
        }
    }

    /// Sends a copy of a frame that waited for ARP, with its MACs set;
    /// fragments it if it is larger than the port's MTU (DF was clear, or it
    /// would not have been queued). Returns why it could not, or nil.
    func transmit(_ bytes: [UInt8], on port: PortID, destinationMAC: MACAddress, emit: inout Emitter) -> DropReason? {
        let sourceMAC = portMACs[port.rawValue]
        let mtu = portMTUs[port.rawValue]
        return bytes.withUnsafeBytes { frame -> DropReason? in
            if frame.count - 14 > mtu, let p = try? parser.parse(frame), p.ipLength > mtu {
                return sendFragments(of: frame, p, on: port, destinationMAC: destinationMAC, sourceMAC: sourceMAC,
                                     emit: &emit) ? nil : .wouldFragment
            }
            guard frame.count <= Emitter.slotSize else { return .frameTooLarge }
            guard emit.count < emit.slotCount else { return .emitQueueFull }
            emit.emit(on: port) { slot in
                slot.copyMemory(from: frame)
                let ethernet = EthernetMutableHeader(unchecked: slot)
                ethernet.destination = destinationMAC
                ethernet.source = sourceMAC
                return frame.count
            }
            counters.forwarded &+= 1
            return nil
        }
    }

    /// Broadcasts "who has `target`" on `port` (or unicasts it to `known`,
    /// to refresh an entry), from the port's address in the target's
    /// subnet (else its primary address).
    func sendARPRequest(for target: IPv4Address, on port: PortID, to known: MACAddress?, emit: inout Emitter) {
        let index = port.rawValue
        let prefixes = portPrefixes[index]
        let source = (prefixes.first { $0.contains(target) } ?? prefixes.first)?.address ?? .any
        let sourceMAC = portMACs[index]
        let sent = emit.emit(on: port) { slot in
            EthernetRepr(destination: known ?? .broadcast, source: sourceMAC, etherType: .arp)
                .emit(into: EthernetMutableHeader(unchecked: slot))
            ARPRepr(operation: .request, senderHardwareAddress: sourceMAC, senderProtocolAddress: source,
                    targetHardwareAddress: .zero, targetProtocolAddress: target)
                .emit(into: ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: slot[14..<42])))
            return 42
        }
        if sent { counters.arpRequestsSent &+= 1 }
    }
}

// MARK: Drop reasons

extension DropReason {
    /// A packet for the router itself that it does not serve (anything but
    /// ICMP echo; answered with ICMP unreachable where RFC 1122 says so).
    public static let localUnsupported = DropReason("local-unsupported")
    /// A source address no host may use (RFC 1812 §5.3.7).
    public static let martianSource = DropReason("martian-source")
    /// A packet too big for the egress MTU without DF that could not be
    /// fragmented (fragments larger than an emitter slot, or no slot left).
    public static let wouldFragment = DropReason("would-fragment")
    /// A frame that waited for ARP is larger than an emitter slot, so it
    /// cannot be sent on its own (jumbo frames; only in-place forwarding
    /// handles those).
    public static let frameTooLarge = DropReason("frame-too-large")
    /// An ARP packet whose sender hardware address is zero or multicast.
    public static let arpBadSender = DropReason("arp-bad-sender")
}

extension Router {
    // Precomputed so a malformed frame does not build a string.
    static let malformedTruncated = DropReason.malformed(WireError.truncated.reason)
    static let malformedVersion = DropReason.malformed(WireError.badVersion.reason)
    static let malformedHeaderLength = DropReason.malformed(WireError.badHeaderLength.reason)
    static let malformedLength = DropReason.malformed(WireError.badLength.reason)
    static let malformedChecksum = DropReason.malformed(WireError.badChecksum.reason)
    static let malformedUnsupported = DropReason.malformed(WireError.unsupported.reason)

    static func malformed(_ error: WireError) -> DropReason {
        switch error {
        case .truncated: malformedTruncated
        case .badVersion: malformedVersion
        case .badHeaderLength: malformedHeaderLength
        case .badLength: malformedLength
        case .badChecksum: malformedChecksum
        case .unsupported: malformedUnsupported
        }
    }
}

