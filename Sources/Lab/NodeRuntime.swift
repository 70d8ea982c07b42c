import Foundation
import Datapath
import LinuxNet
import Topology
import Wire

/// One userspace node at run time: its element, its ports in interface
/// order, and (for AF_XDP) the node's XDP program and capture ring.
final class NodeRuntime {
    let node: Node
    let namespace: String
    /// The element, by concrete type (shared with the simulator).
    let forwarder: NodeForwarder
    /// The ports in interface order, as the run loop drives them.
    let ports: [AnyPacketPort]
    /// Keeps `ports` alive: they refer to their ports unretained, so the
    /// per-packet path reads them without retain/release.
    private let openedPorts: [any PacketPort]
    let program: XDPProgram?
    let captureRing: CaptureRing?
    /// The node's fast path (`fastpath: true`), nil without.
    let fastPath: NodeFastPath?
    /// Carries out the element's verdicts and emitted frames on `ports`.
    var runner = ElementRunner(emitterSlots: 64)
    /// Which ports have no carrier and what the element sent to them
    /// (`LivePorts` reads and counts through the pointer: no retain, no
    /// write-back). Datapath thread, under the daemon's lock.
    let links: UnsafeMutablePointer<PortLinks>
    /// The node's bonds (nil without: its ports are the element's), read
    /// through the pointer as `links` is. Datapath thread, under the lock.
    let bonds: UnsafeMutablePointer<BondMap>?

    init(node: Node, namespace: String, forwarder: NodeForwarder, ports: [AnyPacketPort], opened: [any PacketPort],
         program: XDPProgram?, captureRing: CaptureRing?, fastPath: NodeFastPath?) {
        self.node = node
        self.namespace = namespace
        self.forwarder = forwarder
        self.ports = ports
        openedPorts = opened
        self.program = program
        self.captureRing = captureRing
        self.fastPath = fastPath
        links = .allocate(capacity: 1)
        links.initialize(to: PortLinks())
        bonds = ElementFactory.bondMap(for: node).map { map in
            let pointer = UnsafeMutablePointer<BondMap>.allocate(capacity: 1)
            pointer.initialize(to: map)
            return pointer
        }
    }

    deinit {
        links.deinitialize(count: 1)
        links.deallocate()
        bonds?.deinitialize(count: 1)
        bonds?.deallocate()
    }

    /// The element's port count (a bond is one port).
    var logicalPortCount: Int { bonds?.pointee.logicalCount ?? ports.count }

    func close() {
        for port in ports { port.close() }
        captureRing?.close()
        program?.close()
    }

    /// Opens NODES, several at once (`BlockingWork`: attaching XDP and
    /// binding sockets wait in the kernel); in NODES' order. A failure
    /// closes what was opened and throws the first node's error.
    static func openAll(_ nodes: [Node], lab: String, capture: Bool) throws -> [NodeRuntime] {
        // @unchecked: each slot is written by one thread, and read after all ended.
        final class Slots: @unchecked Sendable {
            let runtimes: UnsafeMutableBufferPointer<NodeRuntime?>
            init(_ count: Int) { runtimes = .allocate(capacity: count); runtimes.initialize(repeating: nil) }
            deinit { runtimes.deinitialize(); runtimes.deallocate() }
        }
        let slots = Slots(nodes.count)
        do {
            try BlockingWork.forEach(nodes.count) { i in
                slots.runtimes[i] = try open(node: nodes[i], lab: lab, capture: capture)
            }
        } catch {
            closeAll(slots.runtimes.compactMap { $0 })
            throw error
        }
        return slots.runtimes.map { $0! }
    }

    /// Closes every node, the ports of all of them at once (`BlockingWork`:
    /// each AF_XDP socket's close waits out an RCU grace period), then each
    /// node's ring and program. Only after the run loop stopped.
    static func closeAll(_ runtimes: [NodeRuntime]) {
        // @unchecked: the loop has stopped, and each port (then each node)
        // is closed by exactly one thread.
        struct Nodes: @unchecked Sendable { let runtimes: [NodeRuntime]; let ports: [AnyPacketPort] }
        let nodes = Nodes(runtimes: runtimes, ports: runtimes.flatMap(\.ports))
        try? BlockingWork.forEach(nodes.ports.count) { nodes.ports[$0].close() }
        try? BlockingWork.forEach(nodes.runtimes.count) { nodes.runtimes[$0].close() }
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

    /// A node with BGP runs its sessions (TCP, either way: to and from port
    /// 179) and BFD (UDP 3784) on its kernel, from its interface addresses
    /// (LabPlan gives that kernel the addresses). Not for an address that is
    /// also a VIP or a FULLNAT local address: the data plane needs that.
    static func controlPlanePassRules(_ node: Node) -> [PassRule] {
        guard node.runsControlPlane else { return [] }
        let dataPlane = Set(node.services.map(\.vip) + node.services.flatMap(\.localAddresses)
                            + node.vrrp.flatMap(\.vips))
        return node.interfaces.flatMap(\.addresses).map(\.address).filter { !dataPlane.contains($0) }
            .flatMap { a in
                (node.bgp != nil ? [PassRule.ipv4(to: a, ipProtocol: 6)] : []) + [PassRule.ipv4(to: a, ipProtocol: 17, port: 3784)]
            }
    }

    /// `WIRELAB_CAPTURE_RING_BYTES`: the size of each AF_XDP node's capture
    /// ring (a power of two of at least a page; default 4 MiB). A small
    /// ring loses frames under load (counted: `status`, and checks become
    /// inconclusive) — to rehearse capture loss, or to save memory.
    static let captureRingVariable = "WIRELAB_CAPTURE_RING_BYTES"

    /// The XDP program of an AF_XDP node with PORTS ports: port slots for
    /// them, and without capture the smallest ring (a page; a BPF ring
    /// buffer is allocated whole when the map is made, and 4 MiB on each of
    /// 183 nodes was 732 MiB of kernel memory nobody read).
    static func programConfiguration(ports: Int, capture: Bool) throws -> XDPProgram.Configuration {
        var configuration = XDPProgram.Configuration()
        configuration.portSlots = max(ports, 1)
        guard capture else {
            configuration.captureRingBytes = XDPProgram.smallestCaptureRingBytes
            return configuration
        }
        if let text = ProcessInfo.processInfo.environment[captureRingVariable] {
            guard let bytes = Int(text), bytes >= 4096, bytes & (bytes - 1) == 0 else {
                throw LabError("\(captureRingVariable)=\(text): the capture ring's size must be a power of two of at least 4096 bytes")
            }
            configuration.captureRingBytes = bytes
        }
        return configuration
    }

    /// Opens the node's ports inside its namespace. AF_XDP: one XDP program
    /// per node (shared XSKMAP, one capture ring); AF_PACKET: raw sockets.
    static func open(node: Node, lab: String, capture: Bool) throws -> NodeRuntime {
        let namespace = LabStore.namespaceName(lab: lab, node: node.name)
        let forwarder = try ElementFactory.makeForwarder(for: node)
        return try NetworkNamespace.run(namespace) { () throws -> NodeRuntime in
            var ports: [AnyPacketPort] = []
            var opened: [any PacketPort] = []   // owns what `ports` refers to
            var program: XDPProgram?
            var ring: CaptureRing?
            var fastPath: NodeFastPath?
            do {
                switch node.datapath {
                case .afxdp:
                    let p = try XDPProgram(configuration: programConfiguration(ports: node.interfaces.count, capture: capture))
                    program = p
                    let configuration = xdpConfiguration(for: node)
                    for iface in node.interfaces {
                        let port = try XDPPort(interface: iface.name, program: p, configuration: configuration)
                        opened.append(port)
                        ports.append(AnyPacketPort(port))
                        if capture { try p.setCapture(true, interfaceIndex: port.interfaceIndex) }
                    }
                    if capture { ring = try CaptureRing(program: p) }
                    var rules = Set<PassRule>()
                    for rule in healthCheckPassRules(node) + controlPlanePassRules(node) where rules.insert(rule).inserted {
                        try p.addPassRule(rule)
                    }
                    if node.fastPath {
                        let f = try NodeFastPath(program: p, ports: ports, node: node)
                        f.sync(generation: forwarder.element.fastPathGeneration)
                        fastPath = f
                    }
                case .afpacket:
                    let configuration = packetConfiguration(for: node)
                    for iface in node.interfaces {
                        let port = try AFPacketPort(interface: iface.name, configuration: configuration)
                        opened.append(port)
                        ports.append(AnyPacketPort(port))
                    }
                }
            } catch {
                for port in opened { port.close() }
                ring?.close()
                program?.close()
                throw LabError("opening \(node.datapath) ports of \(node.name) in \(namespace): \(error)")
            }
            return NodeRuntime(node: node, namespace: namespace, forwarder: forwarder, ports: ports, opened: opened,
                               program: program, captureRing: ring, fastPath: fastPath)
        }
    }
}

/// The carrier of one node's ports as the daemon last applied it, and the
/// frames its element sent to a port without carrier: a NIC without
/// carrier drops what it is given, so they are dropped before the socket
/// (counted `link-down`, as the simulator counts frames sent over a
/// failed link), rather than left in a TX ring to go out when the link
/// comes back.
struct PortLinks {
    /// Bit p: port p has no carrier (ports 0–63, the one word the per-frame
    /// check reads while nothing is down)…
    var down: UInt64 = 0
    /// …and the same for ports 64 and up (a node has up to 1024), bit
    /// p - 64 of `above`; `anyAbove` says whether any is set.
    var above: [UInt64] = []
    var anyAbove = false
    /// Frames dropped because their port had no carrier: sent while it was
    /// down, or still queued when it went.
    var drops: UInt64 = 0

    @inline(__always)
    func isDown(_ port: Int) -> Bool {
        if port < 64 { return down != 0 && down & (1 << UInt64(port)) != 0 }
        guard anyAbove else { return false }
        let i = port - 64
        return i / 64 < above.count && above[i / 64] & (1 << UInt64(i % 64)) != 0
    }

    mutating func set(_ port: Int, up: Bool) {
        guard port >= 64 else {
            if up { down &= ~(1 << UInt64(port)) } else { down |= 1 << UInt64(port) }
            return
        }
        let i = port - 64
        if above.count <= i / 64 { above += [UInt64](repeating: 0, count: i / 64 + 1 - above.count) }
        if up { above[i / 64] &= ~(1 << UInt64(i % 64)) } else { above[i / 64] |= 1 << UInt64(i % 64) }
        anyAbove = above.contains { $0 != 0 }
    }
}
