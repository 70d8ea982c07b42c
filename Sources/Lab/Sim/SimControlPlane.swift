import Datapath
import LinuxNet
import Topology
import Wire

/// A node's BGP and BFD in the simulator, as `BGPController` runs them
/// live: the same `BGPSpeaker` (built by `BGPController.makeSpeaker`), over
/// a kernel of its own — a `HostModel` with the node's interfaces (same
/// MACs), addresses and permanent neighbours, as LabPlan gives the live
/// node's kernel. The frames the live XDP program passes up to that kernel
/// (`NodeRuntime.controlPlanePassRules`: TCP and UDP 3784 to the node's own
/// addresses) go to it here (`takes`); everything else to the element. So
/// BGP's TCP segments and BFD's datagrams (TTL 255, from port 49152) cross
/// the simulated links as frames, and die with a failed link or node:
/// hold timers and BFD detection run as they do live, on the virtual clock.
///
/// A director announces the `announce:` prefixes it can serve, by the
/// daemon's rule (`LabDaemon.updateServable`) without health checks, which
/// are not simulated: a prefix holding one of its services' VIPs, and
/// where the VIP is in one of its VRRP groups, only while it is master
/// (re-evaluated whenever the control plane runs). The TCP is the host
/// model's (no windows: a KEEPALIVE or an UPDATE is one segment).
final class SimControlPlane {
    let node: Node
    let kernel: HostModel
    var speaker: BGPSpeaker
    /// What the kernel takes (the live pass rules).
    let rules: [PassRule]
    /// The router the speaker's routes go to (nil: a director).
    let router: Router?
    /// The node's VRRP groups (a director's mastership decides what it announces).
    let vrrpNode: (any VRRPNode)?
    /// What a director announces now.
    private(set) var announced: Set<IPv4Prefix> = []

    enum Connection: Equatable { case client(HostModel.ConnectionID), server(HostModel.StreamKey) }
    var connections: [IPv4Address: Connection] = [:]
    /// Outgoing connections not established yet.
    var pending: [IPv4Address: HostModel.ConnectionID] = [:]
    /// Every state change (BGP, BFD), route change and announcement, with
    /// its virtual time: what the daemon's log has live.
    private(set) var log: [String] = []

    static let bfdSourcePort: UInt16 = 49152

    init(node: Node, passivePeers: Set<IPv4Address>, forwarder: NodeForwarder, topology: ResolvedTopology) {
        self.node = node
        if case let .router(r) = forwarder { router = r } else { router = nil }
        vrrpNode = forwarder.vrrpNode
        rules = NodeRuntime.controlPlanePassRules(node)
        var configuration = HostModel.Configuration(
            name: node.name, interfaces: node.interfaces.map(PortConfiguration.init),
            arp: .init(entryLifetime: 1e9, retryInterval: 1, maxRetries: 3, queuePerAddress: 100, refreshLead: 0),
            firstEphemeralPort: 32768, recordsDeliveries: false, connectionTimeout: 1e9)
        configuration.streamPorts = node.bgp == nil ? [] : [179]
        kernel = HostModel(configuration: configuration)
        kernel.openUDPPort(bfdControlPort)
        // LabPlan's rule: every address on the node's subnets, from the topology's MACs.
        for (p, iface) in node.interfaces.enumerated() {
            for prefix in iface.addresses {
                for other in topology.nodes where other.name != node.name {
                    for o in other.interfaces {
                        for a in o.addresses where prefix.contains(a.address) && a.length == prefix.length {
                            kernel.addPermanentNeighbour(a.address, mac: o.mac, port: PortID(p))
                        }
                    }
                }
            }
        }
        speaker = BGPController.makeSpeaker(node, passivePeers: passivePeers)
    }

    /// Whether a received frame is the kernel's (the live pass rules).
    func takes(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard frame.count >= 34, frame[12] == 0x08, frame[13] == 0x00 else { return false }
        let headerLength = Int(frame[14] & 0x0F) * 4
        let destination = IPv4Address(rawValue: frame.wireU32(30))
        let proto = frame[23]
        let port: UInt16 = frame.count >= 14 + headerLength + 4 ? frame.wireU16(14 + headerLength + 2) : 0
        return rules.contains { r in
            r.address == destination && (r.ipProtocol == 0 || r.ipProtocol == proto) && (r.port == 0 || r.port == port)
        }
    }

    var nextDeadline: Instant? { speaker.nextDeadline }

    func start(now: Instant, emit: inout Emitter) {
        run(speaker.start(now: now), now: now, emit: &emit)
        updateServable(now: now, emit: &emit)
    }

    /// A director: announces what became servable, withdraws what no longer is.
    func updateServable(now: Instant, emit: inout Emitter) {
        guard node.kind == .director, let spec = node.bgp else { return }
        var groupVIPs = Set<IPv4Address>(), masterVIPs = Set<IPv4Address>()
        for g in vrrpNode?.vrrp.instances ?? [] {
            groupVIPs.formUnion(g.configuration.vips)
            if g.state == .master { masterVIPs.formUnion(g.configuration.vips) }
        }
        let servable = Set(spec.announce.filter { prefix in
            node.services.contains { prefix.contains($0.vip) && (!groupVIPs.contains($0.vip) || masterVIPs.contains($0.vip)) }
        })
        let add = BGPController.ordered(servable.subtracting(announced))
        let remove = BGPController.ordered(announced.subtracting(servable))
        if !add.isEmpty {
            note(now, "announces \(add.map(\.description).joined(separator: ", "))")
            announced.formUnion(add)
            run(speaker.announce(add, now: now), now: now, emit: &emit)
        }
        if !remove.isEmpty {
            note(now, "withdraws \(remove.map(\.description).joined(separator: ", "))")
            announced.subtract(remove)
            run(speaker.withdraw(remove, now: now), now: now, emit: &emit)
        }
    }

    /// After the kernel took a frame or a timer fired: what its sockets
    /// have for the speaker, then the speaker's timers.
    func service(now: Instant, emit: inout Emitter) {
        // Outgoing connections: established, or failed.
        for (peer, id) in pending.sorted(by: { $0.key < $1.key }) {
            let state = kernel.connections[id].state
            if state == .established {
                pending[peer] = nil
                if connections[peer] == nil {
                    connections[peer] = .client(id)
                    run(speaker.handle(.tcpConnected, peer: peer, now: now), now: now, emit: &emit)
                } else {
                    kernel.abort(id, now: now, emit: &emit)
                }
            } else if state != .connecting {
                pending[peer] = nil
                run(speaker.handle(.tcpFailed, peer: peer, now: now), now: now, emit: &emit)
            }
        }
        // Incoming connections: taken while the session waits for one (Connect/Active), refused after.
        for key in kernel.streamServers where !connections.values.contains(.server(key)) {
            let peer = key.remote
            guard let session = speaker.sessions[peer], session.acceptsConnection, connections[peer] == nil else {
                kernel.abortStream(key, now: now, emit: &emit)
                continue
            }
            if let id = pending.removeValue(forKey: peer) { kernel.abort(id, now: now, emit: &emit) }
            connections[peer] = .server(key)
            run(speaker.handle(.tcpConnected, peer: peer, now: now), now: now, emit: &emit)
        }
        // Bytes in; connections that ended.
        for (peer, connection) in connections.sorted(by: { $0.key < $1.key }) {
            switch connection {
            case .client(let id):
                let received = kernel.connections[id].received
                if !received.isEmpty {
                    kernel.consumeReceived(received.count, of: id)
                    run(speaker.handle(.received(received), peer: peer, now: now), now: now, emit: &emit)
                }
                if connections[peer] == connection, kernel.connections[id].state != .established {
                    connections[peer] = nil
                    kernel.abort(id, now: now, emit: &emit)
                    run(speaker.handle(.tcpFailed, peer: peer, now: now), now: now, emit: &emit)
                }
            case .server(let key):
                let received = kernel.takeStreamData(key)
                if !received.isEmpty { run(speaker.handle(.received(received), peer: peer, now: now), now: now, emit: &emit) }
                if connections[peer] == connection, !kernel.isStreamOpen(key) {
                    connections[peer] = nil
                    kernel.abortStream(key, now: now, emit: &emit)
                    run(speaker.handle(.tcpFailed, peer: peer, now: now), now: now, emit: &emit)
                }
            }
        }
        // BFD: single hop only (TTL 255, RFC 5881).
        for datagram in kernel.takeUDPReplies(port: bfdControlPort) {
            guard bfdAcceptsSingleHop(ttl: datagram.timeToLive, destinationPort: bfdControlPort),
                  let packet = try? BFDControlPacket.decode(datagram.payload[...]) else { continue }
            run(speaker.receive(packet, from: datagram.from, now: now), now: now, emit: &emit)
        }
        updateServable(now: now, emit: &emit)
        run(speaker.advance(to: now), now: now, emit: &emit)
    }

    func run(_ actions: [BGPSpeaker.Action], now: Instant, emit: inout Emitter) {
        for action in actions {
            switch action {
            case .bgp(let peer, let a):
                switch a {
                case .connect:
                    guard connections[peer] == nil, pending[peer] == nil else { continue }
                    pending[peer] = kernel.connect(to: peer, port: 179, keepOpen: true, now: now, emit: &emit)
                case .send(let bytes):
                    switch connections[peer] {
                    case .client(let id): kernel.send(bytes, on: id, now: now, emit: &emit)
                    case .server(let key): kernel.sendStream(bytes, on: key, now: now, emit: &emit)
                    case nil: break
                    }
                case .disconnect:
                    switch connections.removeValue(forKey: peer) {
                    case .client(let id): kernel.abort(id, now: now, emit: &emit)
                    case .server(let key): kernel.abortStream(key, now: now, emit: &emit)
                    case nil: break
                    }
                    if let id = pending.removeValue(forKey: peer) { kernel.abort(id, now: now, emit: &emit) }
                case .stateChanged(let from, let to, let reason):
                    note(now, "bgp neighbor \(peer): \(from) → \(to): \(reason)")
                default:
                    break
                }
            case .bfd(let peer, let a):
                switch a {
                case .send(let packet):
                    guard let source = kernel.sourceAddress(for: peer) else { continue }
                    kernel.sendUDP(from: source, sourcePort: Self.bfdSourcePort, to: peer, port: bfdControlPort,
                                   payload: packet.encode(), timeToLive: 255, now: now, emit: &emit)
                case .stateChanged(let from, let to, let diagnostic):
                    note(now, "bfd neighbor \(peer): \(from) → \(to) (\(diagnostic))")
                }
            case .fib(let change):
                note(now, "fib \(change.prefix) → \(change.nextHops.isEmpty ? "removed" : change.nextHops.map(\.description).joined(separator: ", "))")
                router?.applyLearnedRoute(change)
            case .nextHops(let prefix, let gateways):
                note(now, "static route \(prefix) → \(gateways.isEmpty ? "no next hop left, removed" : gateways.map(\.description).joined(separator: ", "))")
                router?.useStaticNextHops(prefix, gateways)
            }
        }
    }

    func note(_ now: Instant, _ text: String) {
        log.append(String(format: "%.3f s ", Double(now.nanoseconds) / 1e9) + "\(node.name) \(text)")
    }

    /// Every BGP session Established and every BFD session it started Up.
    var converged: Bool {
        speaker.sessions.values.allSatisfy { $0.state == .established }
            && speaker.bfd.values.allSatisfy { $0.configuration.passive || $0.state == .up }
    }
}
