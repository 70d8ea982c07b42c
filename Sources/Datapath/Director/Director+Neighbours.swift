import Wire

// The director's neighbours: its small routing table, ARP (answering for
// every owned address, learning, resolving next hops with a bounded queue),
// sending frames on, and the timers.

/// Where the director sends a packet: out of `port` to `nextHop` (the
/// gateway, or the destination itself on its link). Its address on that
/// link (`Director.source(of:)`) is worked out only where a frame needs it.
struct DirectorNextHop: Equatable {
    var port: Int
    var nextHop: UInt32
    /// 0: on-link (the destination is the next hop).
    var gateway: UInt32
}

extension Director {
    // MARK: Routes

    /// The FIB: a connected route per subnet, then the static routes; the
    /// gateway routes of one prefix are one ECMP group, in the order given.
    static func buildFIB(_ c: Configuration, addresses: InterfaceAddresses) throws(ConfigurationError) -> RoutingTable {
        var statics: [IPv4Prefix: RouteEntry] = [:]
        for r in c.routes {
            if let port = r.port, !c.interfaces.indices.contains(port.rawValue) { throw .portOutOfRange(port) }
            let destination = r.destination.canonical
            if let gateway = r.gateway {
                guard let port = addresses.port(reaching: gateway, only: r.port) else { throw .gatewayNotOnLink(gateway) }
                let hop = RouteEntry.NextHop(gateway: gateway, port: port)
                switch statics[destination]?.kind {
                case nil: statics[destination] = .via(destination, [hop])
                case let .via(hops)?: statics[destination] = .via(destination, hops + [hop])
                default: break  // an on-link route came first
                }
            } else {
                guard let port = r.port else { throw .routeWithoutPort(r.destination) }
                if statics[destination] == nil { statics[destination] = .connected(destination, port: port) }
            }
        }
        var fib = RoutingTable()
        // Connected routes last: a static route for a connected prefix loses.
        fib.insert(contentsOf: Array(statics.values) + addresses.connectedRoutes)
        return fib
    }

    /// The longest-prefix match for `destination`, nil = no route. Of an
    /// ECMP group, the next hop the flow hash of `packet` picks (computed
    /// only then); what belongs to no flow (ICMP errors the director makes)
    /// passes nil and takes the first.
    @inline(__always)
    func route(_ destination: UInt32, flowOf packet: ParsedFrame? = nil) -> DirectorNextHop? {
        guard let match = fib.lookup(IPv4Address(rawValue: destination)) else { return nil }
        let port: PortID, nextHop: UInt32, gateway: UInt32
        switch match.action {
        case .connected:
            (port, nextHop, gateway) = (match.port, destination, 0)
        case .gateway:
            let hash = match.nextHopCount > 1 ? packet.map { configuration.ecmp.hash($0) } ?? 0 : 0
            let hop = fib.nextHop(match, hash: hash)
            (port, nextHop, gateway) = (hop.port, hop.gateway.rawValue, hop.gateway.rawValue)
        case .local, .broadcast:
            return nil  // (the director's FIB holds neither)
        }
        return DirectorNextHop(port: port.rawValue, nextHop: nextHop, gateway: gateway)
    }

    /// The director's address on `hop`'s link: the source of ARP requests,
    /// ICMP errors and IPIP outer headers sent that way (0: the port has none).
    func source(of hop: DirectorNextHop) -> UInt32 {
        addresses.source(towards: IPv4Address(rawValue: hop.nextHop), port: PortID(hop.port))?.rawValue ?? 0
    }

    // MARK: ARP

    /// ARP in: learn the sender (RFC 826's merge: when the request is for
    /// us, or the sender is already known or awaited), and answer requests
    /// for any owned address — interface address, VIP or FULLNAT local
    /// address — on whichever port they arrive (Linux' arp_ignore=0), but a
    /// VRRP group's VIPs only on the group's port. The reply is the request
    /// rewritten in place.
    func arpInput(_ p: ParsedFrame, _ packet: inout PacketBuffer, ingress: Int, now: Instant,
                  emit: inout Emitter) -> Verdict {
        var mac = ports[ingress].mac
        guard p.destinationMAC == mac || p.destinationMAC.isBroadcast || (hasVRRP && vrrp.accepts(p.destinationMAC, port: ingress))
        else { return drop(.notForUs) }
        let frame = packet.bytes
        let header = ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: frame[p.l3Offset..<frame.count]))
        let senderIP = header.senderProtocolAddress
        let senderMAC = header.senderHardwareAddress
        let targetIP = header.targetProtocolAddress
        var targetKind = owned.lookup(targetIP.rawValue)
        // A VRRP VIP is ours only while master, on its group's port (with vmac: at the virtual MAC).
        if targetKind & DirectorAddressTable.gated != 0 {
            if vrrp.answersARP(for: targetIP, on: PortID(ingress)) { mac = vrrp.arpMAC(for: targetIP, default: mac) } else { targetKind = 0 }
        }
        let usableSender = !senderMAC.isMulticast && senderMAC != .zero
        var learned = false
        if usableSender && Self.isUsable(senderIP) && addresses.isOnLink(senderIP, port: PortID(ingress)) {
            if owned.lookup(senderIP.rawValue) != 0 {
                // (A VRRP peer announcing a VIP we are backup for is no conflict.)
                if owned.lookup(senderIP.rawValue) & DirectorAddressTable.gated == 0 || vrrp.serves(senderIP) {
                    counters.addressConflicts &+= 1
                }
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
            // Each released frame is sent or counted here, once: no emit is
            // tried without a slot (the runner would count that overflow too).
            guard frame.bytes.count <= Emitter.slotSize else { drops.count(.frameTooLarge); continue }
            guard emit.count < emit.slotCount else { drops.count(.emitQueueFull); continue }
            frame.bytes.withUnsafeBytes { bytes in
                emit.emit(on: waitingPort) { slot in
                    slot.copyMemory(from: bytes)
                    EthernetMutableHeader(unchecked: slot).destination = mac
                    return bytes.count
                }
            }
            counters.releasedAfterResolution &+= 1
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
        // No slot: the runner counts the overflow (emit-queue-full).
        if sent { counters.arpRequestsSent &+= 1 }
    }

    /// Gratuitous ARP for every address the director owns: interface
    /// addresses on their own port, VIPs and local addresses on every port.
    /// The daemon calls it when the data plane starts and when this
    /// director takes the VIPs over (VRRP master), so neighbours' caches
    /// point here at once. VIPs of VRRP groups it is not master of are left
    /// out (their groups announce them on takeover).
    public func announce(emit: inout Emitter) {
        let shared = (vips + core.localAddresses).filter { vrrp.serves($0) }
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
    func transmit(_ packet: inout PacketBuffer, ipLength: Int, hop: DirectorNextHop, now: Instant,
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
    func enqueue(_ frame: UnsafeRawBufferPointer, hop: DirectorNextHop, now: Instant, emit: inout Emitter) -> Verdict {
        hold(frame, hop: hop, now: now, emit: &emit) ? .consumed : drop(.arpQueueFull)
    }

    /// Queues `frame` for `hop`'s next hop (sending the ARP request for the
    /// first); false, counting nothing, when the queue is full.
    func hold(_ frame: UnsafeRawBufferPointer, hop: DirectorNextHop, now: Instant, emit: inout Emitter) -> Bool {
        let target = IPv4Address(rawValue: hop.nextHop)
        let source = IPv4Address(rawValue: source(of: hop))
        let queued = arp.enqueue(for: target, port: PortID(hop.port), now: now) {
            ARPCache.QueuedFrame(bytes: Array(frame), ingressPort: PortID(hop.port), previousHop: .zero,
                                 originalSource: source, originalDestination: target)
        }
        switch queued {
        case .sendRequest:
            emitARPRequest(for: target, port: hop.port, source: source, to: .broadcast, emit: &emit)
            counters.queuedForResolution &+= 1
            return true
        case .queued:
            counters.queuedForResolution &+= 1
            return true
        case .full:
            return false
        }
    }

    /// Sends a frame the director built (Ethernet source set) towards `hop`.
    /// One that cannot be queued is counted as `arp-queue-full` and as a
    /// built frame dropped; one the emitter has no slot for, by the runner.
    func send(_ frame: UnsafeMutableRawBufferPointer, hop: DirectorNextHop, now: Instant, emit: inout Emitter) {
        if let entry = arp.lookup(IPv4Address(rawValue: hop.nextHop), now: now) {
            EthernetMutableHeader(unchecked: frame).destination = entry.mac
            emit.emit(on: PortID(hop.port), copying: UnsafeRawBufferPointer(frame))
        } else if !hold(UnsafeRawBufferPointer(frame), hop: hop, now: now, emit: &emit) {
            drops.count(.arpQueueFull)
            counters.builtFramesDropped &+= 1
        }
    }

    // MARK: Timers

    /// ARP retries (and giving up: what waited is dropped as
    /// `arp-unresolved`), re-probing next hops about to expire, and
    /// connection expiry.
    public func tick(now: Instant, emit: inout Emitter) {
        runARPTimers(now: now, emit: &emit)
        refreshNeighbours(now: now, emit: &emit)
        core.expire(now: now)
        flushSync(now: now, emit: &emit)
        if hasVRRP { vrrp.tick(now: now, emit: &emit) }
    }

    /// Timers finer than the runtime's tick: VRRP's centisecond ones
    /// (adverts, master down, gratuitous ARPs) and the open sync message's
    /// flush deadline (tens of ms, so a takeover finds recent connections).
    /// ARP's retries (200 ms apart at first: `ARPCache.Configuration.forwarder`).
    public var nextTimer: Instant? {
        var t = hasVRRP ? vrrp.nextTimer : nil
        if let flush = syncNextFlush { t = t.map { min($0, flush) } ?? flush }
        if let retry = arp.nextRequest { t = t.map { min($0, retry) } ?? retry }
        return t
    }

    public func fireTimers(now: Instant, emit: inout Emitter) {
        if hasVRRP { vrrp.tick(now: now, emit: &emit) }
        flushSync(now: now, emit: &emit)
        if let retry = arp.nextRequest, retry <= now { runARPTimers(now: now, emit: &emit) }
    }

    /// ARP retries and giving up (what waited is dropped as `arp-unresolved`).
    func runARPTimers(now: Instant, emit: inout Emitter) {
        var retries: [(IPv4Address, Int)] = []
        var dropped = 0
        arp.expire(now: now, retry: { address, waiting in retries.append((address, waiting.port.rawValue)) },
                   giveUp: { _, frames in dropped += frames.count })
        for (address, port) in retries {
            // The request's sender is our address on the port it leaves by.
            let source = addresses.source(towards: address, port: PortID(port)) ?? .any
            emitARPRequest(for: address, port: port, source: source, to: .broadcast, emit: &emit)
        }
        for _ in 0..<dropped { drops.count(.arpUnresolved) }
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
        for route in fib.entries {
            for hop in route.nextHops {
                add(hop.gateway.rawValue, addresses.source(towards: hop.gateway, port: hop.port)?.rawValue ?? 0)
            }
        }
        for s in core.snapshot().services {
            for real in s.reals {
                if let hop = route(real.address.rawValue) { add(hop.nextHop, source(of: hop)) }
            }
        }
        keepFresh = list
    }
}
