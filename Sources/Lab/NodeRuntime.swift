import Datapath
import Glibc
import LinuxNet
import Topology
import Wire

/// One userspace node at run time: its element, its ports in interface
/// order, and (for AF_XDP) the node's XDP program and capture ring.
final class NodeRuntime {
    /// The element, by concrete type, so the run loop's call is static.
    enum Forwarder {
        case learningSwitch(LearningSwitch)
        case router(Router)
        case director(Director)

        var element: any Element {
            switch self {
            case .learningSwitch(let e): return e
            case .router(let e): return e
            case .director(let e): return e
            }
        }

        @inline(__always)
        func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
            switch self {
            case .learningSwitch(let e): return e.process(&packet, from: port, now: now, emit: &emit)
            case .router(let e): return e.process(&packet, from: port, now: now, emit: &emit)
            case .director(let e): return e.process(&packet, from: port, now: now, emit: &emit)
            }
        }

        /// Element counters for `status`, by name.
        var counters: [String: UInt64] {
            switch self {
            case .learningSwitch(let sw):
                return ["learned": sw.counters.learned, "flooded": sw.counters.flooded, "forwarded": sw.counters.forwarded,
                        "moved": sw.counters.moved, "aged": sw.counters.aged, "table-full": sw.counters.tableFull,
                        "mac-entries": UInt64(sw.table.count)]
            case .router(let r):
                let c = r.counters
                return ["forwarded": c.forwarded, "echo-replies": c.echoReplies, "arp-requests-sent": c.arpRequestsSent,
                        "arp-replies-sent": c.arpRepliesSent, "arp-queued": c.arpQueued, "arp-released": c.arpReleased,
                        "icmp-sent": c.icmpSent, "icmp-rate-limited": c.icmpRateLimited, "nat-in": c.natIn,
                        "nat-out": c.natOut, "fragments-sent": c.fragmentsSent]
            case .director(let d):
                let c = d.counters
                return ["received": c.received, "forwarded-dr": c.forwardedDR, "forwarded-tun": c.forwardedTUN,
                        "forwarded-nat": c.forwardedNAT, "forwarded-fullnat": c.forwardedFullNAT,
                        "replies-nat": c.repliesNAT, "replies-fullnat": c.repliesFullNAT,
                        "arp-replies-sent": c.arpRepliesSent, "arp-requests-sent": c.arpRequestsSent,
                        "echo-replies-sent": c.echoRepliesSent, "icmp-errors-sent": c.icmpErrorsSent]
            }
        }
    }

    let node: Node
    let namespace: String
    let forwarder: Forwarder
    var ports: [AnyPacketPort]
    let program: XDPProgram?
    let captureRing: CaptureRing?
    var emitter = Emitter(slots: 64)
    /// Counters of frames the runtime could not send (port TX ring full).
    var transmitFailures: UInt64 = 0

    init(node: Node, namespace: String, forwarder: Forwarder, ports: [AnyPacketPort],
         program: XDPProgram?, captureRing: CaptureRing?) {
        self.node = node
        self.namespace = namespace
        self.forwarder = forwarder
        self.ports = ports
        self.program = program
        self.captureRing = captureRing
    }

    func close() {
        for port in ports { port.close() }
        captureRing?.close()
        program?.close()
        emitter.deallocate()
    }

    /// Builds the element for a node from its topology description.
    static func makeForwarder(for node: Node) throws -> Forwarder {
        switch node.kind {
        case .switch:
            return .learningSwitch(LearningSwitch(ports: node.interfaces.count))
        case .router:
            do {
                return .router(try Router(configuration: routerConfiguration(node)))
            } catch {
                throw LabError("node \(node.name): \(error)")
            }
        case .director:
            do {
                return .director(try Director(configuration: directorConfiguration(node)))
            } catch {
                throw LabError("node \(node.name): \(error)")
            }
        case .host:
            throw LabError("node \(node.name) is a host: its kernel forwards, not the data plane")
        }
    }

    /// The router element's configuration, field for field from the file.
    static func routerConfiguration(_ node: Node) -> Router.Configuration {
        var fields: ECMPHashFields = []
        for field in node.ecmp.fields {
            switch field {
            case .srcIP: fields.insert(.sourceAddress)
            case .dstIP: fields.insert(.destinationAddress)
            case .proto: fields.insert(.protocolNumber)
            case .srcPort: fields.insert(.sourcePort)
            case .dstPort: fields.insert(.destinationPort)
            }
        }
        return Router.Configuration(
            interfaces: node.interfaces.map { .init(name: $0.name, mac: $0.mac, addresses: $0.addresses, mtu: $0.mtu) },
            routes: node.routes.map { .init(destination: $0.destination, gateways: $0.nextHops) },
            ecmpFields: fields, ecmpSeed: node.ecmp.seed,
            nat: node.nat.map { .init(public: $0.publicAddress, private: $0.privateAddress) })
    }

    /// The director element's configuration: interfaces, routes (an ECMP
    /// route uses its first next hop: the director does not hash), services.
    static func directorConfiguration(_ node: Node) -> Director.Configuration {
        let services = node.services.map { service -> Director.Service in
            var persistence: Persistence?
            if let p = service.persistence {
                let mask = service.persistenceMask.map { UInt32($0.rawValue).nonzeroBitCount } ?? 32
                persistence = Persistence(timeout: p.seconds, netmaskLength: mask)
            }
            let virtual = VirtualService(
                address: service.vip, port: UInt16(service.port), proto: service.proto == .udp ? .udp : .tcp,
                scheduler: SchedulerKind(rawValue: service.scheduler.rawValue) ?? .wlc,
                mode: Datapath.ForwardingMode(rawValue: service.mode.rawValue) ?? .dr,
                persistence: persistence, localAddresses: service.localAddresses)
            return Director.Service(virtual, reals: service.reals.map {
                RealServer(address: $0.ip, port: UInt16($0.port), weight: $0.weight)
            })
        }
        return Director.Configuration(
            interfaces: node.interfaces.map { .init(name: $0.name, mac: $0.mac, addresses: $0.addresses, mtu: $0.mtu) },
            routes: node.routes.compactMap { r in r.nextHops.first.map { Director.Route(r.destination, via: $0) } },
            services: services)
    }

    /// A director with health checks probes its reals with kernel sockets
    /// from its interface addresses (LabPlan gives its kernel those
    /// addresses): TCP to them goes to the kernel. Not for an address that
    /// is also a TCP VIP or a FULLNAT local address: the data plane needs
    /// that traffic (checks from such an address get no answers and fail).
    static func healthCheckPassRules(_ node: Node) -> [PassRule] {
        guard node.kind == .director, node.services.contains(where: { $0.health != nil }) else { return [] }
        let dataPlane = Set(node.services.filter { $0.proto == .tcp }.map(\.vip) + node.services.flatMap(\.localAddresses))
        return node.interfaces.flatMap(\.addresses).map(\.address).filter { !dataPlane.contains($0) }
            .map { PassRule.ipv4(to: $0, ipProtocol: 6) }
    }

    /// Opens the node's ports inside its namespace. AF_XDP: one XDP program
    /// per node (shared XSKMAP, one capture ring); AF_PACKET: raw sockets.
    static func open(node: Node, lab: String, capture: Bool) throws -> NodeRuntime {
        let namespace = LabStore.namespaceName(lab: lab, node: node.name)
        let forwarder = try makeForwarder(for: node)
        return try NetworkNamespace.run(namespace) { () throws -> NodeRuntime in
            var ports: [AnyPacketPort] = []
            var program: XDPProgram?
            var ring: CaptureRing?
            do {
                switch node.datapath {
                case .afxdp:
                    let p = try XDPProgram()
                    program = p
                    // Frames over ~1792 bytes need 4096-byte UMEM frames in copy mode.
                    var configuration = XDPPort.Configuration()
                    if node.interfaces.contains(where: { $0.mtu > 1700 }) { configuration.frameSize = 4096 }
                    for iface in node.interfaces {
                        let port = try XDPPort(interface: iface.name, program: p, configuration: configuration)
                        ports.append(.xdp(port))
                        if capture { try p.setCapture(true, interfaceIndex: port.interfaceIndex) }
                    }
                    if capture { ring = try CaptureRing(program: p) }
                    for rule in healthCheckPassRules(node) { try p.addPassRule(rule) }
                case .afpacket:
                    var configuration = AFPacketPort.Configuration()
                    if node.interfaces.contains(where: { $0.mtu > 1900 }) { configuration.bufferSize = 9216 + 256 }
                    for iface in node.interfaces {
                        ports.append(.packet(try AFPacketPort(interface: iface.name, configuration: configuration)))
                    }
                }
            } catch {
                for port in ports { port.close() }
                ring?.close()
                program?.close()
                throw LabError("opening \(node.datapath) ports of \(node.name) in \(namespace): \(error)")
            }
            return NodeRuntime(node: node, namespace: namespace, forwarder: forwarder, ports: ports,
                               program: program, captureRing: ring)
        }
    }
}
