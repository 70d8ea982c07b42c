// From observations and a marker to the probe's path, hop by hop, with what
// changed at each hop and why.
import Topology
import Wire

/// A header field the walk shows and checks compare.
public enum HopField: String, CaseIterable, Sendable, Hashable {
    case srcMAC = "src-mac", dstMAC = "dst-mac", vlan
    case srcIP = "src-ip", dstIP = "dst-ip", proto, srcPort = "src-port", dstPort = "dst-port", ttl
    case innerSrcIP = "inner-src-ip", innerDstIP = "inner-dst-ip"
}

/// How a node forwarded a frame.
public enum ForwardingPath: String, Sendable, Hashable {
    /// Through the node's element (or its kernel, for a kernel node).
    case slow
    /// The node's XDP program applied its element's earlier decision for
    /// the flow and redirected the frame in the kernel (docs/fastpath.md).
    case fast
}

/// One frame of the probe (or its reply) on one link.
public struct Hop: Sendable, Hashable {
    /// 1-based position in the path.
    public var number: Int
    public var direction: ProbeMarker.Direction
    public var link: Int
    public var linkName: String
    /// The node and interface that sent it, and where it was received.
    public var sender: Endpoint
    public var receiver: Endpoint
    /// The interface of the sender it came in on (nil where it started).
    public var senderIn: String?
    /// The hop that brought the frame to the sender (same direction), if any.
    public var previous: Int?
    public var timestamp: UInt64
    public var frame: [UInt8]
    public var fields: FrameFields
    /// Fields that differ from the frame the sender received.
    public var changed: Set<HopField>
    /// One line: why the sender sent it this way.
    public var reason: String
    /// The interfaces whose MACs the frame carries (`gw:eth1`), if known.
    public var sourceMACOwner: String?
    public var destinationMACOwner: String?
    /// How the sender forwarded it: through its element, or repeated by its
    /// fast path in the kernel (known from the sender's own capture of the
    /// frame it received, `Observation.fastPath`).
    public var path: ForwardingPath = .slow
    /// The receiver's fast path took this frame (its capture says so): the
    /// hop out of the receiver that follows is a fast one, if it was seen.
    public var takenByFastPath = false

    /// Where the frame went through the sender: `in eth0, out eth1`, and
    /// `, fast path` when it never reached the sender's element.
    public var interfacesText: String {
        (senderIn.map { "in \($0), " } ?? "") + "out \(sender.interface)" + (path == .fast ? ", fast path" : "")
    }

    /// A MAC field as a person reads it: `gw:eth1 (02:…)`, or the bare MAC.
    public func macText(_ field: HopField) -> String? {
        guard let mac = value(field) else { return nil }
        let owner = field == .srcMAC ? sourceMACOwner : field == .dstMAC ? destinationMACOwner : nil
        return owner.map { "\($0) (\(mac))" } ?? mac
    }

    /// The text form of a field (nil when the frame has no such field).
    public func value(_ field: HopField) -> String? {
        fields.value(field)
    }
}

extension FrameFields {
    public func value(_ field: HopField) -> String? {
        switch field {
        case .srcMAC: return sourceMAC.description
        case .dstMAC: return destinationMAC.description
        case .vlan: return vlan.map(String.init)
        case .srcIP: return ip?.source.description
        case .dstIP: return ip?.destination.description
        case .proto: return ip.map { $0.packetProtocol?.rawValue ?? String($0.protocolNumber) }
        case .srcPort: return transport?.sourcePort.map(String.init)
        case .dstPort: return transport?.destinationPort.map(String.init)
        case .ttl: return ip.map { String($0.timeToLive) }
        case .innerSrcIP: return inner?.source.description
        case .innerDstIP: return inner?.destination.description
        }
    }
}

/// The probe's path: its request hops, then its reply hops, each in the
/// order the frames travelled.
public struct ProbePath: Sendable {
    public var marker: ProbeMarker
    public var hops: [Hop]
    public var request: [Hop] { hops.filter { $0.direction == .request } }

    /// The first hop of the chain that led to `hop`: who sent the frame.
    public func origin(of hop: Hop) -> Hop {
        var h = hop
        while let p = h.previous { h = hops[p - 1] }
        return h
    }

    /// The hop at or before `hop` (following `previous`) where `field` last
    /// changed: who made the frame look the way it does.
    public func lastChange(of field: HopField, before hop: Hop) -> Hop? {
        var h: Hop? = hop
        while let current = h {
            if current.changed.contains(field) { return current }
            h = current.previous.map { hops[$0 - 1] }
        }
        return nil
    }
    public var reply: [Hop] { hops.filter { $0.direction == .reply } }

    /// Hops whose frame the receiver's fast path took, after which no link
    /// saw it: a redirect the egress refused (or a capture that missed it).
    public var lostAfterFastPath: [Hop] {
        hops.filter { h in h.takenByFastPath && !hops.contains { $0.previous == h.number } }
    }

    /// Follows `marker` through `observations` of `topology`.
    public static func trace(_ observations: [Observation], marker: ProbeMarker, origin: String?,
                             topology: ResolvedTopology) -> ProbePath {
        var request: [(Observation, FrameFields)] = []
        var reply: [(Observation, FrameFields)] = []
        for o in observations {
            guard let f = FrameFields(frame: o.frame), let d = marker.classify(f) else { continue }
            if d == .request { request.append((o, f)) } else { reply.append((o, f)) }
        }
        let reasoner = HopReasoner(topology: topology)
        var hops: [Hop] = []
        var previousByNode: [String: Hop] = [:]
        for (direction, list) in [(ProbeMarker.Direction.request, request), (.reply, reply)] {
            var received: [String: Hop] = direction == .reply ? previousByNode : [:]
            let ordered = causalOrder(list, origin: direction == .request ? origin : nil,
                                      alreadyHeld: Set(received.keys))
            for (o, f) in ordered {
                let prior = received[o.sender.node]
                var changed: Set<HopField> = []
                if let prior, prior.direction == direction {
                    for field in HopField.allCases where prior.fields.value(field) != f.value(field) { changed.insert(field) }
                }
                var hop = Hop(number: hops.count + 1, direction: direction, link: o.link,
                              linkName: ObservationReader.linkName(topology.links[o.link]),
                              sender: o.sender, receiver: o.receiver, senderIn: prior?.receiver.interface,
                              previous: prior?.direction == direction ? prior?.number : nil,
                              timestamp: o.timestamp, frame: o.frame, fields: f, changed: changed, reason: "")
                hop.reason = reasoner.reason(for: hop, prior: prior, siblings: ordered.map(\.0))
                hop.sourceMACOwner = reasoner.macOwner[f.sourceMAC]?.description
                hop.destinationMACOwner = f.destinationMAC.isBroadcast ? "broadcast" : reasoner.macOwner[f.destinationMAC]?.description
                if let prior, prior.direction == direction, prior.takenByFastPath { hop.path = .fast }
                hop.takenByFastPath = o.fastPath
                hops.append(hop)
                received[o.receiver.node] = hop
                previousByNode[o.receiver.node] = hop
            }
        }
        return ProbePath(marker: marker, hops: hops)
    }

    /// Time order, corrected by causality: a node sends the probe on only
    /// after it received it, whatever small skew separates the clocks of
    /// different capture points.
    static func causalOrder(_ list: [(Observation, FrameFields)], origin: String?, alreadyHeld: Set<String>)
        -> [(Observation, FrameFields)] {
        var remaining = list.sorted { ($0.0.timestamp, $0.0.sequence) < ($1.0.timestamp, $1.0.sequence) }
        var holders = alreadyHeld
        if let origin { holders.insert(origin) }
        var out: [(Observation, FrameFields)] = []
        while !remaining.isEmpty {
            let i = remaining.firstIndex { holders.contains($0.0.sender.node) } ?? 0
            let next = remaining.remove(at: i)
            holders.insert(next.0.receiver.node)
            out.append(next)
        }
        return out
    }
}

/// One-line reasons, derived from the topology and what was seen.
struct HopReasoner {
    let topology: ResolvedTopology
    let nodes: [String: Node]
    /// MAC → the interface that owns it.
    let macOwner: [MACAddress: Endpoint]

    init(topology: ResolvedTopology) {
        self.topology = topology
        var nodes: [String: Node] = [:]
        var owners: [MACAddress: Endpoint] = [:]
        for n in topology.nodes {
            nodes[n.name] = n
            // A bond's members carry its MAC: the bond owns it.
            for i in n.interfaces { owners[i.mac] = Endpoint(node: n.name, interface: i.bond ?? i.name) }
        }
        self.nodes = nodes
        self.macOwner = owners
    }

    func owner(_ mac: MACAddress) -> String {
        if mac.isBroadcast { return "broadcast" }
        return macOwner[mac]?.description ?? mac.description
    }

    struct RouteChoice {
        var text: String
        var nextHop: IPv4Address
    }

    /// Longest-prefix match over the node's connected subnets and routes.
    func route(_ node: Node, to dst: IPv4Address, chosenMAC: MACAddress) -> RouteChoice? {
        var best: (len: Int, choice: RouteChoice)?
        for (iface, subnet) in node.connectedSubnets where subnet.contains(dst) {
            if best == nil || subnet.length > best!.len {
                best = (subnet.length, RouteChoice(text: "route \(subnet.canonical) connected (\(iface))", nextHop: dst))
            }
        }
        for r in node.routes where r.destination.contains(dst) {
            guard best == nil || r.destination.length > best!.len else { continue }
            let name = r.isDefault ? "default" : r.destination.canonical.description
            if r.isMultipath {
                // Which next hop was taken shows in the MAC the frame went to.
                let taken = r.nextHops.first { hop in macOwner[chosenMAC].flatMap { nodes[$0.node] }?.addresses.contains { $0.address == hop } ?? false }
                let list = r.nextHops.map(\.description).joined(separator: " | ")
                best = (r.destination.length, RouteChoice(text: "route \(name) ECMP via \(list)" + (taken.map { " → \($0)" } ?? ""),
                                                          nextHop: taken ?? r.nextHops[0]))
            } else {
                best = (r.destination.length, RouteChoice(text: "route \(name) via \(r.nextHops[0])", nextHop: r.nextHops[0]))
            }
        }
        return best?.choice
    }

    func reason(for hop: Hop, prior: Hop?, siblings: [Observation]) -> String {
        guard let node = nodes[hop.sender.node] else { return "\(hop.sender.node): not in the topology" }
        let f = hop.fields
        let out = hop.sender.interface
        if node.kind != .switch, let error = originatedICMPError(node, hop: hop, prior: prior) { return error }
        switch node.kind {
        case .switch:
            let dst = f.destinationMAC
            let copies = siblings.filter { $0.sender.node == node.name && $0.frame == hop.frame }
            if dst.isBroadcast || dst.isMulticast { return "switch \(node.name): \(owner(dst)) → flooded" }
            if copies.count > 1 { return "switch \(node.name): \(owner(dst))'s MAC not learned yet → flooded (\(copies.map(\.sender.interface).joined(separator: ", ")))" }
            return "switch \(node.name): \(owner(dst))'s MAC learned on \(out)"
        case .host:
            guard let ip = f.ip else { return "host \(node.name): sends on \(out)" }
            let what = hop.direction == .request ? "sends to \(ip.destination)" : "answers \(ip.destination)"
            let r = route(node, to: ip.destination, chosenMAC: f.destinationMAC)
            return "host \(node.name): \(what)" + (r.map { "; \($0.text); ARP \($0.nextHop) → \(owner(f.destinationMAC))" } ?? " on \(out)")
        case .router:
            guard let ip = f.ip else { return "router \(node.name): sends on \(out)" }
            var parts: [String] = []
            if let p = prior?.fields.ip {
                if p.destination != ip.destination { parts.append("static NAT dst \(p.destination) → \(ip.destination)") }
                if p.source != ip.source { parts.append("static NAT src \(p.source) → \(ip.source)") }
            }
            if let r = route(node, to: ip.destination, chosenMAC: f.destinationMAC) {
                parts.append(r.text)
                parts.append("ARP \(r.nextHop) → \(owner(f.destinationMAC))")
            } else {
                parts.append("out \(out)")
            }
            if let p = prior?.fields.ip, p.timeToLive != ip.timeToLive { parts.append("TTL \(p.timeToLive) → \(ip.timeToLive)") }
            return "router \(node.name): " + parts.joined(separator: "; ")
        case .director:
            return directorReason(node, hop: hop, prior: prior)
        }
    }

    /// The name of an ICMP error (type, code) as RFC 792 gives it.
    static func icmpErrorName(type: UInt8, code: UInt8) -> String? {
        switch (type, code) {
        case (3, 0): return "destination unreachable (net unreachable)"
        case (3, 1): return "destination unreachable (host unreachable)"
        case (3, 2): return "destination unreachable (protocol unreachable)"
        case (3, 3): return "destination unreachable (port unreachable)"
        case (3, 4): return "destination unreachable (fragmentation needed)"
        case (3, _): return "destination unreachable (code \(code))"
        case (11, 0): return "time exceeded (TTL expired in transit)"
        case (11, _): return "time exceeded (code \(code))"
        case (12, _): return "parameter problem"
        default: return nil
        }
    }

    /// An ICMP error the sender made itself about the probe it received
    /// (no route, TTL expired, port closed, DF too big): it is not a
    /// forwarded frame, so no NAT or rewrite explains it.
    func originatedICMPError(_ node: Node, hop: Hop, prior: Hop?) -> String? {
        guard let ip = hop.fields.ip, ip.protocolNumber == 1, let type = ip.icmpType, let code = ip.icmpCode,
              let name = Self.icmpErrorName(type: type, code: code),
              let prior, prior.direction == .request, hop.direction == .reply,
              node.addresses.contains(where: { $0.address == ip.source }) else { return nil }
        let about = ip.quotedDestination.map { " about the probe to \($0)" } ?? ""
        var text = "\(node.kind.rawValue) \(node.name): ICMP \(name)\(about), sent back to \(ip.destination) from \(ip.source)"
        if let r = route(node, to: ip.destination, chosenMAC: hop.fields.destinationMAC) {
            text += "; \(r.text); ARP \(r.nextHop) → \(owner(hop.fields.destinationMAC))"
        }
        return text
    }

    func directorReason(_ node: Node, hop: Hop, prior: Hop?) -> String {
        let f = hop.fields
        guard let t = f.transport, let ip = f.ip else { return "director \(node.name): sends on \(hop.sender.interface)" }
        let p = prior?.fields.transport
        // Toward a real server: the prior frame was addressed to a service.
        if let p, let service = node.services.first(where: { s in
            s.vip == p.destination && (s.port == 0 || p.destinationPort.map(Int.init) == s.port)
                && (s.proto == .tcp ? p.protocolNumber == 6 : p.protocolNumber == 17)
        }) {
            let real = service.reals.first { r in
                switch service.mode {
                case .dr: return macOwner[f.destinationMAC].flatMap { nodes[$0.node] }?.addresses.contains { $0.address == r.ip } ?? false
                case .tun: return ip.destination == r.ip
                case .nat, .fullnat: return t.destination == r.ip
                }
            }
            let realName = real.map { r in topology.nodes.first { $0.addresses.contains { $0.address == r.ip } }.map { "\($0.name) (\(r.ip))" } ?? r.ip.description } ?? "?"
            // What the hop did to the TTL the packet arrived with (DR: the
            // packet's own; TUN: the inner one, which the outer copies).
            func ttl(_ label: String, _ now: UInt8?) -> String {
                guard let before = prior?.fields.ip?.timeToLive, let now else { return "" }
                return before == now ? ", \(label) \(now) unchanged" : ", \(label) \(before) → \(now)"
            }
            let what: String
            switch service.mode {
            case .dr: what = "DR: MACs rewritten (\(owner(f.sourceMAC)) → \(owner(f.destinationMAC)))" + ttl("TTL", ip.timeToLive)
            case .tun: what = "TUN: IPIP \(ip.source) → \(ip.destination) around the packet" + ttl("inner TTL", f.inner?.timeToLive)
            case .nat: what = "NAT: dst \(p.destination):\(p.destinationPort.map(String.init) ?? "") → \(t.destination):\(t.destinationPort.map(String.init) ?? "")"
            case .fullnat: what = "FULLNAT: src → \(t.source):\(t.sourcePort.map(String.init) ?? ""), dst → \(t.destination):\(t.destinationPort.map(String.init) ?? "")"
            }
            return "director \(node.name): service \(service.vip):\(service.port) \(service.scheduler.rawValue) → \(realName), \(what)"
        }
        if let p, p.source != t.source || p.destination != t.destination {
            // Only what changed: NAT puts back the source, FULLNAT both ends.
            var back: [String] = []
            if p.source != t.source { back.append("src \(p.source) → \(t.source)") }
            if p.destination != t.destination { back.append("dst \(p.destination) → \(t.destination)") }
            if let a = p.sourcePort, let b = t.sourcePort, a != b { back.append("src port \(a) → \(b)") }
            if let a = p.destinationPort, let b = t.destinationPort, a != b { back.append("dst port \(a) → \(b)") }
            return "director \(node.name): reply translated back, \(back.joined(separator: ", ")); ARP → \(owner(f.destinationMAC))"
        }
        if let r = route(node, to: ip.destination, chosenMAC: f.destinationMAC) {
            return "director \(node.name): \(r.text); ARP \(r.nextHop) → \(owner(f.destinationMAC))"
        }
        return "director \(node.name): sends on \(hop.sender.interface)"
    }
}
