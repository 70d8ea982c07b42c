import Wire

// The director's neighbours: its small routing table, ARP (answering for
// every owned address, learning, resolving next hops with a bounded queue),
// sending frames on, and the timers.

/// One route of the director: a prefix and either a gateway or "on-link".
/// A director has a handful (its connected subnets and a default route),
/// so the table is a flat array of plain values scanned longest prefix
/// first: no hashing, no reference counting per packet.
struct DirectorRoute: Equatable {
    var network: UInt32
    var mask: UInt32
    /// 0: on-link (the destination is the next hop).
    var gateway: UInt32
    var port: Int
    /// The director's address on the next hop's subnet: source of ARP
    /// requests, ICMP errors and IPIP outer headers sent this way.
    var source: UInt32
    /// Filled in by `Director.route(_:)`: the gateway, or the destination itself.
    var nextHop: UInt32 = 0
    /// On the first route of an ECMP group (gateway routes of one prefix,
    /// adjacent in `Director.routes`): how many there are. 1 otherwise.
    var group = 1
}

extension Director {
    // MARK: Routes

    static func buildRoutes(_ c: Configuration) throws(ConfigurationError) -> [DirectorRoute] {
        // (prefix length, order given, route): connected first, so a static
        // route for a connected prefix loses the tie.
        var list: [(Int, Int, DirectorRoute)] = []
        for (i, interface) in c.interfaces.enumerated() {
            for a in interface.addresses {
                list.append((a.length, list.count, DirectorRoute(network: a.address.rawValue & a.mask, mask: a.mask,
                                                                 gateway: 0, port: i, source: a.address.rawValue)))
            }
        }
        let connected = list.map(\.2)
        for r in c.routes {
            if let port = r.port, !c.interfaces.indices.contains(port.rawValue) { throw .portOutOfRange(port) }
            let d = r.destination
            if let gateway = r.gateway {
                // The longest connected subnet (on the given port, if any) holding the gateway.
                let link = connected
                    .filter { gateway.rawValue & $0.mask == $0.network && (r.port == nil || $0.port == r.port!.rawValue) }
                    .max { $0.mask.nonzeroBitCount < $1.mask.nonzeroBitCount }
                guard let link else { throw .gatewayNotOnLink(gateway) }
                list.append((d.length, list.count, DirectorRoute(network: d.address.rawValue & d.mask, mask: d.mask,
                                                                 gateway: gateway.rawValue, port: link.port, source: link.source)))
            } else {
                guard let port = r.port else { throw .routeWithoutPort(d) }
                let source = c.interfaces[port.rawValue].addresses[0].address.rawValue
                list.append((d.length, list.count, DirectorRoute(network: d.address.rawValue & d.mask, mask: d.mask,
                                                                 gateway: 0, port: port.rawValue, source: source)))
            }
        }
        // Longest prefix first; one prefix's routes together (an ECMP group
        // is adjacent), the connected one before static ones, then in order.
        var routes = list.sorted {
            if $0.0 != $1.0 { return $0.0 > $1.0 }
            if $0.2.network != $1.2.network { return $0.2.network < $1.2.network }
            return $0.1 < $1.1
        }.map(\.2)
        var i = 0
        while i < routes.count {
            let first = routes[i]
            var n = 1
            while first.gateway != 0, i + n < routes.count, routes[i + n].gateway != 0,
                  routes[i + n].network == first.network, routes[i + n].mask == first.mask {
                n += 1
            }
            routes[i].group = n
            i += n
        }
        return routes
    }

    /// Longest-prefix match, with `nextHop` filled in; nil = no route. Of
    /// an ECMP group (static routes of one prefix, adjacent in `routes`),
    /// the member the flow hash of `packet` picks (computed only then);
    /// what belongs to no flow (ICMP errors the director makes) passes nil
    /// and takes the first.
    /// (An index loop: `for … in … where` allocated per call in debug
    /// builds, as heaptrack showed.)
    @inline(__always)
    func route(_ destination: UInt32, flowOf packet: ParsedFrame? = nil) -> DirectorRoute? {
        var i = 0
        while i < routes.count {
            let first = routes[i]
            if destination & first.mask == first.network {
                var r = first
                if first.group > 1, let packet {
                    r = routes[i + Int(configuration.ecmp.hash(packet) % UInt32(first.group))]
                }
                r.nextHop = r.gateway != 0 ? r.gateway : destination
                return r
            }
            i += 1
        }
        return nil
    }

    /// Whether `address` is on one of `port`'s connected subnets.
    func isOnLink(_ address: UInt32, port: Int) -> Bool {
        var i = 0
        while i < routes.count {
            let r = routes[i]
            if r.gateway == 0 && r.port == port && address & r.mask == r.network { return true }
            i += 1
        }
        return false
    }

    // MARK: ARP

    /// ARP in: learn the sender (RFC 826's merge: when the request is for
    /// us, or the sender is already known or awaited), and answer requests
    /// for any owned address — interface address, VIP or FULLNAT local
    /// address — on whichever port they arrive (Linux' arp_ignore=0). The
    /// reply is the request rewritten in place.
    func arpInput(_ p: ParsedFrame, _ packet: inout PacketBuffer, ingress: Int, now: Instant,
                  emit: inout Emitter) -> Verdict {
        let mac = ports[ingress].mac
        guard p.destinationMAC == mac || p.destinationMAC.isBroadcast else { return drop(.notForUs) }
        let frame = packet.bytes
        let header = ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: frame[p.l3Offset..<frame.count]))
        let senderIP = header.senderProtocolAddress
        let senderMAC = header.senderHardwareAddress
        let targetIP = header.targetProtocolAddress
        let targetKind = owned.lookup(targetIP.rawValue)
        let usableSender = !senderMAC.isMulticast && senderMAC != .zero
        var learned = false
        if usableSender && Self.isUsable(senderIP) && isOnLink(senderIP.rawValue, port: ingress) {
            if owned.lookup(senderIP.rawValue) != 0 {
                counters.addressConflicts &+= 1
            } else if targetKind != 0 || arp.hasEntry(for: senderIP) || arp.pending[senderIP] != nil {
                learn(senderIP, mac: senderMAC, port: ingress, now: now, emit: &emit)
                learned = true
            }
        }
        // A request for one of ours, not a gratuitous one (sender == target).
        // A probe (sender 0.0.0.0, RFC 5227) is answered: that defends the address.
        if p.arpOperation == .request && targetKind != 0 && senderIP != targetIP && usableSender {
            let eth = EthernetMutableHeader(unchecked: frame)
            eth.destination = senderMAC
            eth.source = mac
            header.operation = .reply
            header.targetHardwareAddress = senderMAC
            header.targetProtocolAddress = senderIP
            header.senderHardwareAddress = mac
            header.senderProtocolAddress = targetIP
            counters.arpRepliesSent &+= 1
            return .forward(PortID(ingress))
        }
        return learned ? .consumed : drop(.notForUs)
    }

    /// Records `address` → `mac` and sends what waited for it.
    func learn(_ address: IPv4Address, mac: MACAddress, port: Int, now: Instant, emit: inout Emitter) {
        let waitingPort = arp.pending[address]?.port ?? PortID(port)
        let frames = arp.learn(address, mac: mac, port: PortID(port), now: now)
        counters.arpLearned &+= 1
        for frame in frames ?? [] {
            let sent = frame.bytes.withUnsafeBytes { bytes in
                emit.emit(on: waitingPort) { slot in
                    guard bytes.count <= slot.count else { return 0 }
                    slot.copyMemory(from: bytes)
                    EthernetMutableHeader(unchecked: slot).destination = mac
                    return bytes.count
                }
            }
            if sent { counters.releasedAfterResolution &+= 1 } else { drops.count(.emitQueueFull) }
        }
    }

    /// Emits an ARP request for `target` (broadcast, or unicast to a known
    /// MAC to re-probe it); sender = `source` (= `target` for a gratuitous one).
    func emitARPRequest(for target: IPv4Address, port: Int, source: IPv4Address, to destination: MACAddress,
                        emit: inout Emitter) {
        let mac = ports[port].mac
        let sent = emit.emit(on: PortID(port)) { slot in
            EthernetRepr(destination: destination, source: mac, etherType: .arp)
                .emit(into: EthernetMutableHeader(unchecked: slot))
            ARPRepr(operation: .request, senderHardwareAddress: mac, senderProtocolAddress: source,
                    targetHardwareAddress: .zero, targetProtocolAddress: target)
                .emit(into: ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: slot[14..<42])))
            return 42
        }
        if sent { counters.arpRequestsSent &+= 1 } else { drops.count(.emitQueueFull) }
    }

    /// Gratuitous ARP for every address the director owns: interface
    /// addresses on their own port, VIPs and local addresses on every port.
    /// The daemon calls it when the data plane starts and when this
    /// director takes the VIPs over (VRRP master), so neighbours' caches
    /// point here at once.
    public func announce(emit: inout Emitter) {
        let shared = vips + core.localAddresses
        for (i, interface) in configuration.interfaces.enumerated() {
            for a in interface.addresses.map(\.address) + shared {
                emitARPRequest(for: a, port: i, source: a, to: .broadcast, emit: &emit)
            }
        }
    }

    // MARK: Sending

    /// Sends the rewritten frame in `packet` (IPv4 at offset 14, `ipLength`
    /// bytes) towards `hop`: Ethernet source = the egress port, destination
    /// = the next hop's MAC, or queued while ARP resolves it; fragmented if
    /// larger than the egress MTU (DF was checked before rewriting).
    func transmit(_ packet: inout PacketBuffer, ipLength: Int, hop: DirectorRoute, now: Instant,
                  emit: inout Emitter) -> Verdict {
        let eth = EthernetMutableHeader(unchecked: packet.bytes)
        eth.source = ports[hop.port].mac
        if ipLength > ports[hop.port].mtu {
            return fragment(packet.readOnly, ipLength: ipLength, hop: hop, now: now, emit: &emit)
        }
        if let entry = arp.lookup(IPv4Address(rawValue: hop.nextHop), now: now) {
            eth.destination = entry.mac
            return .forward(PortID(hop.port))
        }
        return enqueue(packet.readOnly, hop: hop, now: now, emit: &emit)
    }

    /// Holds a frame until `hop`'s next hop resolves (its first one sends
    /// the ARP request). The queue is bounded per address and in addresses.
    func enqueue(_ frame: UnsafeRawBufferPointer, hop: DirectorRoute, now: Instant, emit: inout Emitter) -> Verdict {
        let target = IPv4Address(rawValue: hop.nextHop)
        let source = IPv4Address(rawValue: hop.source)
        let queued = arp.enqueue(for: target, port: PortID(hop.port), now: now) {
            ARPCache.QueuedFrame(bytes: Array(frame), ingressPort: PortID(hop.port), previousHop: .zero,
                                 originalSource: source, originalDestination: target)
        }
        switch queued {
        case .sendRequest:
            emitARPRequest(for: target, port: hop.port, source: source, to: .broadcast, emit: &emit)
            counters.queuedForResolution &+= 1
            return .consumed
        case .queued:
            counters.queuedForResolution &+= 1
            return .consumed
        case .full:
            return drop(.arpQueueFull)
        }
    }

    /// Sends a frame the director built (Ethernet source set) towards `hop`.
    func send(_ frame: UnsafeMutableRawBufferPointer, hop: DirectorRoute, now: Instant, emit: inout Emitter) {
        if let entry = arp.lookup(IPv4Address(rawValue: hop.nextHop), now: now) {
            EthernetMutableHeader(unchecked: frame).destination = entry.mac
            if !emit.emit(on: PortID(hop.port), copying: UnsafeRawBufferPointer(frame)) { drops.count(.emitQueueFull) }
        } else {
            _ = enqueue(UnsafeRawBufferPointer(frame), hop: hop, now: now, emit: &emit)
        }
    }

    // MARK: Timers

    /// ARP retries (and giving up: what waited is dropped as
    /// `arp-unresolved`), re-probing next hops about to expire, and
    /// connection expiry.
    public func tick(now: Instant, emit: inout Emitter) {
        var retries: [(IPv4Address, Int)] = []
        var dropped = 0
        arp.expire(now: now, retry: { address, waiting in retries.append((address, waiting.port.rawValue)) },
                   giveUp: { _, frames in dropped += frames.count })
        for (address, port) in retries {
            // The request's sender is our address on the port it leaves by.
            let source = routes.first { $0.port == port && $0.source != 0 }.map { IPv4Address(rawValue: $0.source) } ?? .any
            emitARPRequest(for: address, port: port, source: source, to: .broadcast, emit: &emit)
        }
        for _ in 0..<dropped { drops.count(.arpUnresolved) }
        refreshNeighbours(now: now, emit: &emit)
        core.expire(now: now)
    }

    /// Next hops the director forwards to (reals, gateways) whose entry
    /// expires within `arpRefreshBefore` get a unicast request, at most one
    /// per retry interval, so the entry is renewed before it lapses.
    func refreshNeighbours(now: Instant, emit: inout Emitter) {
        let window = UInt64(configuration.arpRefreshBefore * 1e9)
        let interval = UInt64(configuration.arp.retryInterval * 1e9)
        for i in keepFresh.indices {
            let n = keepFresh[i]
            // `lookup`, not `entries[…]`: that builds a dictionary (a malloc
            // every tick, the director's only one in steady state).
            guard let entry = arp.lookup(n.address, now: now),
                  entry.expires.nanoseconds - now.nanoseconds <= window else { continue }
            if let last = n.lastRequest, now.nanoseconds &- last < interval { continue }
            emitARPRequest(for: n.address, port: entry.port.rawValue, source: n.source, to: entry.mac, emit: &emit)
            keepFresh[i].lastRequest = now.nanoseconds
        }
    }

    /// The next hops worth keeping resolved: every route's gateway and
    /// every real's next hop.
    func rebuildKeepFresh() {
        var list: [FreshNeighbour] = []
        func add(_ address: UInt32, _ source: UInt32) {
            guard !list.contains(where: { $0.address.rawValue == address }) else { return }
            let last = keepFresh.first { $0.address.rawValue == address }?.lastRequest
            list.append(FreshNeighbour(address: IPv4Address(rawValue: address), source: IPv4Address(rawValue: source),
                                       lastRequest: last))
        }
        for r in routes where r.gateway != 0 { add(r.gateway, r.source) }
        for s in core.snapshot().services {
            for real in s.reals {
                if let hop = route(real.address.rawValue) { add(hop.nextHop, hop.source) }
            }
        }
        keepFresh = list
    }
}
