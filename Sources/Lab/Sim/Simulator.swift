import Datapath
import Topology
import Wire

/// The in-process simulator (`wirelab sim`, `walk --sim`, unit tests): the
/// same elements as the live lab — built by `ElementFactory` from the same
/// topology — plus a `HostModel` for every host, joined by virtual links,
/// driven by a virtual clock. No root, no sockets, no threads.
///
/// - A frame sent on a port arrives at the link's other end `linkDelay`
///   nanoseconds later; a frame longer than the link MTU (+ 14 bytes of
///   Ethernet) is dropped at the sender (`link-mtu`), a port without a link
///   drops what it sends (`no-link`).
/// - Events (frame arrivals) run in (time, sequence) order; element timers
///   (`tick`: ARP retries and expiry, switch aging, director expiry, host
///   SYN and data retransmissions) run every `tickInterval` of virtual time, in node
///   order; elements with finer timers (VRRP, sync flushes: `Element.nextTimer`)
///   also run those (`fireTimers`) at the moment they are due. Same topology +
///   same calls → the same frames at the same
///   virtual times, so the pcapng is byte-identical run to run.
/// - Every frame is recorded where it is received, per link, as the live
///   `CaptureRecorder` does: interface `"<a.node>:<a.if> ↔ <b.node>:<b.if>"`
///   in `topology.links` order, comment `"rx <node>:<iface>"`, timestamps
///   `epoch` + virtual time.
/// - Health checks (`health:`) are NOT simulated: every real server stays
///   in rotation with its configured weight.
/// - BGP and BFD (`bgp:`, `bfd:`) run as live: the same protocol cores on
///   a kernel model of each such node (`SimControlPlane`), their TCP
///   segments and BFD datagrams frames on the simulated links; `init` runs
///   the virtual clock until every session is up (at most 30 s), as `up`
///   waits for VRRP elections.
/// - Failures (`fail(link:)`, `fail(node:)`, `heal`, as `wirelab fail/heal`
///   live): a failed link loses every frame on it, both ways, from that
///   instant (frames in flight too; counted `link-down` on the sender); a
///   failed node is powered off: it receives, sends and ticks nothing, its
///   state frozen as it was, and its links are down. The elements at a
///   down link's live ends learn the carrier loss as the daemon applies it
///   (`NodeForwarder.carrierChanged`: routers drop the next hops through it);
///   a failed node learns, when healed, what changed while it was off;
///   traffic from a failed host (`connect`, `ping`, …) is an error.
///   Host models keep their routes over a port without carrier (Linux's
///   default, `ignore_routes_with_linkdown=0`): what they send there is
///   lost — but a host with an ECMP route drops the next hops whose link
///   lost carrier, as the lab sets its kernel to (`LabPlan`).
///
/// The three things the verification side uses: `sendIPv4(_:from:)` (a
/// probe sent as a host's raw IP socket would), `captures()` / `pcapng()`
/// (observations), and `drops(of:)`, `host(_:)` (drop counters by reason,
/// what each host model received: ping replies, connections, HTTP bodies).
public final class Simulator {
    /// 2026-01-01T00:00:00Z in nanoseconds since the Unix epoch: virtual time 0.
    public static let epoch: UInt64 = 1_767_225_600 * 1_000_000_000

    public struct Options: Sendable {
        /// Nanoseconds a frame spends on a link.
        public var linkDelay: UInt64
        /// Nanoseconds between element timer rounds.
        public var tickInterval: UInt64
        /// Record every received frame (off for benchmarks).
        public var captures: Bool
        /// Host models record every packet delivered to them.
        public var recordsDeliveries: Bool
        public init(linkDelay: UInt64 = 10_000, tickInterval: UInt64 = 1_000_000_000, captures: Bool = true,
                    recordsDeliveries: Bool = true) {
            self.linkDelay = linkDelay
            self.tickInterval = tickInterval
            self.captures = captures
            self.recordsDeliveries = recordsDeliveries
        }
    }

    public enum SimError: Error, CustomStringConvertible, Equatable {
        case unknownNode(String)
        case notAHost(String)
        case element(String)
        /// `fail`/`heal` of an endpoint that is no link's end.
        case noLink(String)
        /// `fail` of what is failed already, `heal` of what is not failed.
        case failure(String)
        public var description: String {
            switch self {
            case let .unknownNode(n): return "no node '\(n)' in the topology"
            case let .notAHost(n): return "node '\(n)' is not a host: only hosts send probes"
            case let .element(m): return m
            case let .noLink(m): return m
            case let .failure(m): return m
            }
        }
    }

    /// What runs a node.
    public enum NodeElement {
        case forwarder(NodeForwarder)
        case host(HostModel)

        public var element: any Element {
            switch self {
            case let .forwarder(f): return f.element
            case let .host(h): return h
            }
        }
    }

    /// One port's link: the peer's node and port, and the link's index.
    struct PortEnd {
        var link: Int32 = -1
        var peerNode: Int32 = -1
        var peerPort: Int32 = -1
    }

    final class SimNode {
        let name: String
        let kind: NodeKind
        let element: NodeElement
        @exclusivity(unchecked) var ports: [PortEnd]
        /// `ports.count`, read per frame without touching the array.
        let portCount: Int
        let interfaceNames: [String]
        /// "rx <node>:<iface>" per port: the capture comment of frames received there.
        let comments: [String]
        /// Carries out the element's verdicts and emitted frames on the node's links.
        @exclusivity(unchecked) var runner = ElementRunner(emitterSlots: 256)
        /// Drops the simulator decided (link MTU, no link) by reason.
        var linkDrops = DropCounters()
        /// Powered off (`fail(node:)`): processes, sends and ticks nothing.
        var failed = false
        /// Per port, the carrier it was last seen with (up at start).
        var carrier: [Bool]
        /// BGP and BFD on the node's kernel (nodes with `bgp:` or `bfd:`).
        var controlPlane: SimControlPlane?
        /// The node's bonds (nil without): the element's ports are logical,
        /// `ports` physical (`BondMap`, as live).
        @exclusivity(unchecked) var bonds: BondMap?
        let hasBonds: Bool
        /// The element's port count (a bond is one port).
        let logicalPortCount: Int
        init(name: String, kind: NodeKind, element: NodeElement, ports: [PortEnd], interfaceNames: [String], bonds: BondMap? = nil) {
            self.name = name
            self.kind = kind
            self.element = element
            self.ports = ports
            self.bonds = bonds
            hasBonds = bonds != nil
            logicalPortCount = bonds?.logicalCount ?? ports.count
            portCount = ports.count
            carrier = Array(repeating: true, count: ports.count)
            self.interfaceNames = interfaceNames
            comments = interfaceNames.map { "rx \(name):\($0)" }
        }
    }

    struct SimLink {
        var name: String
        var mtu: Int
        var records: [PcapRecord] = []
        /// The ends' nodes.
        var a: Int32 = -1
        var b: Int32 = -1
        /// Failed by `fail(link:)` itself (apart from a failed end node).
        var failed = false
    }

    struct Event {
        var time: UInt64
        var sequence: UInt64
        var node: Int32
        var port: Int32
        var buffer: Int32
        var offset: Int32
        var length: Int32
    }

    public static let linkMTUDrop = DropReason("link-mtu")
    public static let noLinkDrop = DropReason("no-link")

    public let topology: ResolvedTopology
    public let options: Options
    // `@exclusivity(unchecked)` on the state the frame loop touches: the
    // dynamic exclusivity checks cost a third of the time (perf), and no
    // access to one of these overlaps another access to it.
    /// Virtual time now, nanoseconds from `epoch`.
    @exclusivity(unchecked) public private(set) var now: UInt64 = 0
    /// Frames delivered to an element so far (the benchmark's unit).
    @exclusivity(unchecked) public private(set) var framesProcessed: UInt64 = 0
    /// Element timer rounds run so far.
    public private(set) var ticks: UInt64 = 0

    let nodes: [SimNode]
    let nodeIndex: [String: Int]
    @exclusivity(unchecked) var links: [SimLink]
    /// Per link, its MTU (apart from `links`, whose records grow).
    let linkMTUs: [Int]
    /// Per link, whether frames cross it: neither it nor an end node failed.
    @exclusivity(unchecked) var linkLive: [Bool]
    // The event queue. Every frame arrives `linkDelay` after the moment it
    // was sent, and that moment (`now`) never goes back, so events are
    // created in (time, sequence) order: a FIFO ring is the priority queue.
    @exclusivity(unchecked) var ring: UnsafeMutablePointer<Event>
    @exclusivity(unchecked) var ringCapacity = 1024
    @exclusivity(unchecked) var ringHead = 0
    @exclusivity(unchecked) var ringCount = 0
    @exclusivity(unchecked) var sequence: UInt64 = 0
    @exclusivity(unchecked) var lastQueued: UInt64 = 0
    var nextTick: UInt64
    /// Nodes whose element has timers finer than the tick (VRRP groups).
    let timerNodes: [Int]
    // Frame buffers: one allocation each, reused through a free list.
    static let headroom = 256
    let bufferSize: Int
    @exclusivity(unchecked) var buffers: [UnsafeMutableRawPointer] = []
    @exclusivity(unchecked) var freeBuffers: [Int32] = []

    public init(topology: ResolvedTopology, options: Options = Options()) throws {
        self.topology = topology
        self.options = options
        nextTick = options.tickInterval
        let roles = RealServerRole.roles(in: topology)
        var nodes: [SimNode] = []
        var index: [String: Int] = [:]
        for node in topology.nodes {
            let element: NodeElement
            if node.kind == .host {
                var configuration = ElementFactory.hostConfiguration(node, role: roles[node.name])
                configuration.recordsDeliveries = options.recordsDeliveries
                element = .host(HostModel(configuration: configuration))
            } else {
                do {
                    element = .forwarder(try ElementFactory.makeForwarder(for: node))
                } catch {
                    throw SimError.element("\(error)")
                }
            }
            index[node.name] = nodes.count
            nodes.append(SimNode(name: node.name, kind: node.kind, element: element,
                                 ports: node.interfaces.map { _ in PortEnd() },
                                 interfaceNames: node.interfaces.map(\.name),
                                 bonds: node.isUserspace ? ElementFactory.bondMap(for: node) : nil))
        }
        var links: [SimLink] = []
        var maxMTU = 1500
        for (l, link) in topology.links.enumerated() {
            links.append(SimLink(name: "\(link.a.node):\(link.a.interface) ↔ \(link.b.node):\(link.b.interface)", mtu: link.mtu))
            maxMTU = max(maxMTU, link.mtu)
            guard let na = index[link.a.node], let nb = index[link.b.node],
                  let pa = nodes[na].interfaceNames.firstIndex(of: link.a.interface),
                  let pb = nodes[nb].interfaceNames.firstIndex(of: link.b.interface) else { continue }
            nodes[na].ports[pa].link = Int32(l)
            nodes[na].ports[pa].peerNode = Int32(nb)
            nodes[na].ports[pa].peerPort = Int32(pb)
            nodes[nb].ports[pb].link = Int32(l)
            nodes[nb].ports[pb].peerNode = Int32(na)
            nodes[nb].ports[pb].peerPort = Int32(pa)
            links[l].a = Int32(na)
            links[l].b = Int32(nb)
        }
        for node in topology.nodes where node.runsControlPlane {
            guard let i = index[node.name], case let .forwarder(f) = nodes[i].element else { continue }
            nodes[i].controlPlane = SimControlPlane(node: node, passivePeers: BGPController.passivePeers(of: node, in: topology),
                                                    forwarder: f, topology: topology)
        }
        self.nodes = nodes
        timerNodes = nodes.indices.filter {
            if nodes[$0].controlPlane != nil { return true }
            if case let .forwarder(f) = nodes[$0].element { return f.hasFineTimers }
            return false
        }
        self.nodeIndex = index
        self.links = links
        linkMTUs = links.map(\.mtu)
        linkLive = Array(repeating: true, count: links.count)
        bufferSize = Self.headroom + max(maxMTU + 18, Emitter.slotSize) + 64
        ring = UnsafeMutablePointer<Event>.allocate(capacity: ringCapacity)
        // As `up` does live: VRRP groups elect their masters before anything
        // is sent (one Master_Down_Interval of virtual time), so a probe to a
        // VIP does not race the election. The adverts are in the captures.
        // BGP sessions and BFD come up before anything is sent too.
        let controlPlanes = nodes.filter { $0.controlPlane != nil }
        for n in controlPlanes {
            n.controlPlane!.start(now: instant, emit: &n.runner.emitter)
            drain(n)
        }
        // (`run` would stop at the first quiet moment: keepalives are not work.)
        while !controlPlanes.allSatisfy({ $0.controlPlane!.converged }), now < 30_000_000_000 {
            advance(by: 10_000_000)
        }
        let hasVRRP = nodes.contains { if case let .forwarder(f) = $0.element { return !(f.vrrpNode?.vrrp.isEmpty ?? true) }; return false }
        if hasVRRP { run(limit: 60_000_000_000) }
    }

    deinit {
        for b in buffers { b.deallocate() }
        ring.deallocate()
    }

    // MARK: - Access

    /// The host model of `name` (nil if no such host).
    public func host(_ name: String) -> HostModel? {
        guard let i = nodeIndex[name], case let .host(h) = nodes[i].element else { return nil }
        return h
    }

    /// The element of node `name`.
    public func element(_ name: String) -> NodeElement? {
        nodeIndex[name].map { nodes[$0].element }
    }

    /// Drops of node `name` by reason name: the element's own (the names
    /// `wirelab status` shows live) and the simulator's (`link-mtu`,
    /// `no-link`, `emit-queue-full`).
    public func drops(of name: String) -> [String: UInt64] {
        guard let i = nodeIndex[name] else { return [:] }
        var out: [String: UInt64] = [:]
        for (reason, count) in nodes[i].element.element.drops.counts { out[reason.rawValue, default: 0] += count }
        for (reason, count) in nodes[i].linkDrops.counts { out[reason.rawValue, default: 0] += count }
        for (reason, count) in nodes[i].runner.drops.counts { out[reason.rawValue, default: 0] += count }
        if let b = nodes[i].bonds?.backupDrops, b > 0 { out[BondMap.backupDrop.rawValue, default: 0] += b }
        return out
    }

    /// Every node's drops, in node order (nodes without drops left out).
    public func allDrops() -> [(node: String, drops: [String: UInt64])] {
        nodes.compactMap { n in
            let d = drops(of: n.name)
            return d.isEmpty ? nil : (n.name, d)
        }
    }

    /// The virtual time as an element sees it.
    public var instant: Instant { Instant(nanoseconds: now) }

    // MARK: - Observations

    /// Every link's capture, in `topology.links` order.
    public func captures() -> [PcapNGLink] {
        links.map { PcapNGLink(name: $0.name, records: $0.records) }
    }

    /// All links merged into one pcapng (deterministic).
    public func pcapng(comment: String? = nil) -> [UInt8] {
        PcapNGWriter.merge(captures(), comment: comment ?? "wirelab sim \(topology.name): every link, recorded where it is received")
    }

    /// Forgets what was recorded so far.
    public func clearCaptures() {
        for i in links.indices { links[i].records.removeAll() }
    }

    // MARK: - Traffic from hosts

    func hostNode(_ name: String) throws(SimError) -> (SimNode, HostModel) {
        guard let i = nodeIndex[name] else { throw .unknownNode(name) }
        guard case let .host(h) = nodes[i].element else { throw .notAHost(name) }
        return (nodes[i], h)
    }

    /// A host that can act: a failed (powered off) one cannot.
    func runningHost(_ name: String) throws(SimError) -> (SimNode, HostModel) {
        let (n, h) = try hostNode(name)
        guard !n.failed else { throw .failure("host \(name) is failed (powered off): it sends nothing until healed") }
        return (n, h)
    }

    /// Sends a complete IPv4 packet from host `node` as its kernel would
    /// from a raw IP socket: routed by its routes, next hop resolved by ARP,
    /// framed with its MAC. False if the host has no route (counted as a
    /// `no-route` drop on the host).
    @discardableResult
    public func sendIPv4(_ packet: [UInt8], from node: String) throws(SimError) -> Bool {
        let (n, h) = try runningHost(node)
        let ok = packet.withUnsafeBytes { h.sendIPv4($0, now: instant, emit: &n.runner.emitter) }
        drain(n)
        return ok
    }

    /// An ICMP echo request from `node`.
    @discardableResult
    public func ping(from node: String, to destination: IPv4Address, identifier: UInt16, sequence: UInt16) throws(SimError) -> Bool {
        let (n, h) = try runningHost(node)
        let ok = h.ping(destination, identifier: identifier, sequence: sequence, now: instant, emit: &n.runner.emitter)
        drain(n)
        return ok
    }

    /// A TCP connection from `node`; `request` is sent once it is up (an
    /// empty request: connect and close, unless `keepOpen`: see
    /// `HostModel.connect`). Follow it in `host(node)!.connections[id]`.
    public func connect(from node: String, to destination: IPv4Address, port: UInt16,
                        request: [UInt8] = [], keepOpen: Bool = false) throws(SimError) -> HostModel.ConnectionID {
        let (n, h) = try runningHost(node)
        let id = h.connect(to: destination, port: port, request: request, keepOpen: keepOpen, now: instant,
                           emit: &n.runner.emitter)
        drain(n)
        return id
    }

    /// More data from `node` on its established connection `id`; false if
    /// it is not established.
    @discardableResult
    public func send(_ data: [UInt8], on id: HostModel.ConnectionID, from node: String) throws(SimError) -> Bool {
        let (n, h) = try runningHost(node)
        let ok = h.send(data, on: id, now: instant, emit: &n.runner.emitter)
        drain(n)
        return ok
    }

    /// A UDP datagram from `node` (from a fresh ephemeral port, returned).
    @discardableResult
    public func sendUDP(from node: String, to destination: IPv4Address, port: UInt16,
                        payload: [UInt8]) throws(SimError) -> UInt16? {
        let (n, h) = try runningHost(node)
        let local = h.sendUDP(to: destination, port: port, payload: payload, now: instant, emit: &n.runner.emitter)
        drain(n)
        return local
    }

    /// An HTTP GET from `node` (curl-like request), run until the exchange
    /// ends or `limit` ns pass; the connection as it ended (`httpBody` is
    /// the answer: the serving node's name and a newline).
    public func httpGet(from node: String, to address: IPv4Address, port: UInt16 = 80, path: String = "/",
                        hostHeader: String? = nil, limit: UInt64 = 10_000_000_000) throws(SimError) -> HostModel.ClientConnection {
        let (_, h) = try runningHost(node)
        let host = hostHeader ?? (port == 80 ? address.description : "\(address):\(port)")
        let id = try connect(from: node, to: address, port: port, request: HostModel.httpRequest(host: host, path: path))
        run(limit: limit) { h.connections[id].state.isFinished }
        return h.connections[id]
    }

    // MARK: - Failures (`wirelab fail` / `heal`)

    /// Fails the link with end `end` (either end names it): both directions
    /// lose every frame from now on, those in flight too.
    public func fail(link end: Endpoint) throws(SimError) {
        let l = try linkIndex(end)
        guard !links[l].failed else { throw .failure("link \(links[l].name) is already failed") }
        links[l].failed = true
        updateLinks()
    }

    /// Heals a link `fail(link:)` failed (it stays down while an end node is failed).
    public func heal(link end: Endpoint) throws(SimError) {
        let l = try linkIndex(end)
        guard links[l].failed else { throw .failure("link \(links[l].name) is not failed") }
        links[l].failed = false
        updateLinks()
    }

    /// Powers node `name` off: it processes, sends and ticks nothing (a host
    /// model's connections freeze, as a live host's processes do under
    /// SIGSTOP), its links go down, their far ends see carrier loss.
    public func fail(node name: String) throws(SimError) {
        guard let i = nodeIndex[name] else { throw .unknownNode(name) }
        guard !nodes[i].failed else { throw .failure("node \(name) is already failed") }
        nodes[i].failed = true
        // Its VRRP groups stop without a word, as on a dead box (no priority 0).
        if case let .forwarder(f) = nodes[i].element { f.vrrpNode.map { $0.vrrp.stop(now: instant) } }
        updateLinks()
    }

    /// Powers node `name` back on where it stopped: its state as it was,
    /// its links up again except those failed by themselves; it learns the
    /// carrier changes it missed.
    public func heal(node name: String) throws(SimError) {
        guard let i = nodeIndex[name] else { throw .unknownNode(name) }
        guard nodes[i].failed else { throw .failure("node \(name) is not failed") }
        nodes[i].failed = false
        updateLinks()
        // Its VRRP groups start again (Initialize) on the ports with carrier.
        let n = nodes[i]
        if case let .forwarder(f) = n.element, let node = f.vrrpNode, !node.vrrp.isEmpty {
            for p in 0..<n.logicalPortCount where n.bonds?.hasCarrier(logical: p) ?? n.carrier[p] {
                node.vrrp.setLink(PortID(p), up: true, now: instant, emit: &n.runner.emitter)
            }
            drain(n)
        }
    }

    /// One fail/heal of a drill event, `walk --fail` or a test.
    public func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target) throws(SimError) {
        switch (action, target) {
        case let (.fail, .node(n)): try fail(node: n)
        case let (.heal, .node(n)): try heal(node: n)
        case let (.fail, .link(l)): try fail(link: l)
        case let (.heal, .link(l)): try heal(link: l)
        }
    }

    /// Whether node `name` is failed (nil: no such node).
    public func isFailed(node name: String) -> Bool? {
        nodeIndex[name].map { nodes[$0].failed }
    }

    /// Whether the link with end `end` is up: neither it nor an end node failed (nil: no such link).
    public func isUp(link end: Endpoint) -> Bool? {
        (try? linkIndex(end)).map { linkLive[$0] }
    }

    func linkIndex(_ end: Endpoint) throws(SimError) -> Int {
        guard let n = nodeIndex[end.node] else { throw .unknownNode(end.node) }
        guard let l = topology.links.firstIndex(where: { $0.a == end || $0.b == end }) else {
            let linked = nodes[n].interfaceNames.indices.filter { nodes[n].ports[$0].link >= 0 }.map { nodes[n].interfaceNames[$0] }
            throw .noLink("node \(end.node) has no linked interface \(end.interface); its linked interfaces: \(linked.joined(separator: ", "))")
        }
        return l
    }

    /// After a failure or a heal: which links carry frames, the frames in
    /// flight on links that went down dropped, and every running element
    /// told of each carrier change at its ports (in node and port order).
    func updateLinks() {
        for l in links.indices {
            let live = !links[l].failed && links[l].a >= 0 && !nodes[Int(links[l].a)].failed
                && !nodes[Int(links[l].b)].failed
            if linkLive[l] && !live { dropInFlight(link: Int32(l)) }
            linkLive[l] = live
        }
        for n in nodes where !n.failed {
            for p in 0..<n.portCount where n.ports[p].link >= 0 {
                let up = linkLive[Int(n.ports[p].link)]
                guard n.carrier[p] != up else { continue }
                n.carrier[p] = up
                if case let .host(h) = n.element { h.setLink(PortID(p), up: up) }
                if case let .forwarder(f) = n.element {
                    // The element sees its bonds' carrier, not their members' (`BondMap`).
                    let change = n.bonds?.setCarrier(p, up: up) ?? BondMap.Change(logical: p, carrier: up)
                    if let up = change.carrier {
                        f.carrierChanged(port: PortID(change.logical), up: up, now: instant, emit: &n.runner.emitter)
                    }
                    if change.failover != nil, n.bonds?.hasCarrier(logical: change.logical) == true,
                       let bond = topology.node(named: n.name)?.logicalInterfaces[change.logical] {
                        f.bondFailedOver(port: PortID(change.logical), mac: bond.mac, addresses: bond.addresses.map { $0.address },
                                         emit: &n.runner.emitter)
                    }
                    drain(n)
                }
            }
        }
    }

    /// Drops the frames on their way across link `l` (counted `link-down` on their sender).
    func dropInFlight(link l: Int32) {
        for i in 0..<ringCount {
            let slot = (ringHead + i) & (ringCapacity - 1)
            let e = ring[slot]
            guard e.node >= 0, nodes[Int(e.node)].ports[Int(e.port)].link == l else { continue }
            nodes[Int(nodes[Int(e.node)].ports[Int(e.port)].peerNode)].linkDrops.count(.linkDown)
            freeBuffers.append(e.buffer)
            ring[slot].node = -1
        }
    }

    // MARK: - Running

    /// Whether anything is still to happen: frames in flight, or an element
    /// that waits for a timer (ARP being resolved, a connection open).
    public var isQuiet: Bool {
        guard ringCount == 0 else { return false }
        for n in nodes where !n.failed {
            switch n.element {
            case let .host(h): if h.isBusy { return false }
            case let .forwarder(.router(r)): if !r.arp.pending.isEmpty { return false }
            case let .forwarder(.director(d)): if d.isResolving || d.syncNextFlush != nil { return false }
            case .forwarder(.learningSwitch): break
            }
        }
        // VRRP adverts go on forever; only an election still under way counts.
        for i in timerNodes where !nodes[i].failed {
            if case let .forwarder(f) = nodes[i].element, f.vrrpNode?.vrrp.isSettling == true { return false }
        }
        return true
    }

    /// The earliest element timer (nil: none), as virtual nanoseconds.
    func nextElementTimer() -> UInt64? {
        var t: UInt64?
        for i in timerNodes where !nodes[i].failed {
            if case let .forwarder(f) = nodes[i].element, let n = f.element.nextTimer?.nanoseconds, t.map({ n < $0 }) ?? true {
                t = n
            }
            if let n = nodes[i].controlPlane?.nextDeadline?.nanoseconds, t.map({ n < $0 }) ?? true { t = n }
        }
        return t
    }

    /// When the next timer round is due: the tick, or an element timer before it.
    var nextTimerRound: UInt64 {
        guard !timerNodes.isEmpty, let t = nextElementTimer() else { return nextTick }
        return min(nextTick, max(t, now))
    }

    /// Runs the round due at `now`: the regular tick, or only the element timers that are due.
    func runTimerRound() {
        if now >= nextTick {
            tickAll()
            nextTick &+= options.tickInterval
        }
        // (After a tick too: a timer the tick did not reach, e.g. one due at this very moment.)
        let t = instant
        for i in timerNodes where !nodes[i].failed {
            let n = nodes[i]
            if let cp = n.controlPlane, let due = cp.nextDeadline, due <= t {
                cp.service(now: t, emit: &n.runner.emitter)
                drain(n)
            }
            guard case let .forwarder(f) = n.element, let due = f.element.nextTimer, due <= t else { continue }
            var ports = SimPorts(simulator: self, node: n)
            n.runner.fireTimers(f.element, now: t, ports: &ports)
        }
    }

    /// Runs until nothing is left to do, `stop` says so (checked after every
    /// event), or `limit` nanoseconds of virtual time have passed. Returns
    /// true if it stopped because it was quiet or `stop` said so.
    @discardableResult
    public func run(limit: UInt64 = 60_000_000_000, until stop: (() -> Bool)? = nil) -> Bool {
        let deadline = now &+ limit
        while true {
            if let stop, stop() { return true }
            let round = nextTimerRound
            if let first = peekEvent(), first.time < round {
                guard first.time <= deadline else { now = deadline; return false }
                let event = popEvent()
                now = event.time
                deliver(event)
                continue
            }
            if isQuiet { return true }
            guard round <= deadline else { now = deadline; return false }
            now = round
            runTimerRound()
        }
    }

    /// Runs the frames in flight only (no timers): the benchmark's loop.
    public func runFramesOnly() {
        while ringCount > 0 {
            let event = popEvent()
            now = event.time
            deliver(event)
        }
    }

    /// Advances virtual time by `nanoseconds`, running what happens meanwhile.
    public func advance(by nanoseconds: UInt64) {
        let deadline = now &+ nanoseconds
        while true {
            let nextEvent = peekEvent()?.time ?? UInt64.max
            let round = nextTimerRound
            if nextEvent < round, nextEvent <= deadline {
                let event = popEvent()
                now = event.time
                deliver(event)
            } else if round <= deadline {
                now = round
                runTimerRound()
            } else {
                now = deadline
                return
            }
        }
    }

    func tickAll() {
        ticks &+= 1
        let t = instant
        for n in nodes where !n.failed {
            var ports = SimPorts(simulator: self, node: n)
            switch n.element {
            case let .host(h): n.runner.tick(h, now: t, ports: &ports)
            case let .forwarder(f): n.runner.tick(f.element, now: t, ports: &ports)
            }
            // The kernel's TCP retransmissions, then what they changed.
            if let cp = n.controlPlane {
                n.runner.tick(cp.kernel, now: t, ports: &ports)
                cp.service(now: t, emit: &n.runner.emitter)
                drain(n)
            }
        }
    }

    // MARK: - Frames

    @inline(__always)
    func takeBuffer() -> Int32 {
        if let b = freeBuffers.popLast() { return b }
        buffers.append(UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64))
        return Int32(buffers.count - 1)
    }

    @inline(__always)
    func deliver(_ event: Event) {
        guard event.node >= 0 else { return }   // lost on a link that failed in flight
        let node = nodes[Int(event.node)]
        let port = Int(event.port)
        let base = buffers[Int(event.buffer)]
        var packet = PacketBuffer(base: base, capacity: bufferSize, offset: Int(event.offset), length: Int(event.length))
        if options.captures {
            links[Int(node.ports[port].link)].records.append(
                PcapRecord(timestamp: Self.epoch &+ event.time, bytes: Array(packet.readOnly), comment: node.comments[port]))
        }
        var ingress = PortID(port)
        if node.hasBonds {
            // A bond takes in frames on its active member only.
            guard let logical = node.bonds?.receivePort(port) else {
                node.bonds?.backupDrops &+= 1
                freeBuffers.append(event.buffer)
                return
            }
            ingress = PortID(logical)
        }
        framesProcessed &+= 1
        let t = Instant(nanoseconds: event.time)
        var ports = SimPorts(simulator: self, node: node, buffer: event.buffer)
        if let cp = node.controlPlane, cp.takes(packet.readOnly) {
            node.runner.process(cp.kernel, &packet, from: ingress, now: t, ports: &ports)
            cp.service(now: t, emit: &node.runner.emitter)
            drain(node)
            return
        }
        switch node.element {
        case let .forwarder(.learningSwitch(e)): node.runner.process(e, &packet, from: ingress, now: t, ports: &ports)
        case let .forwarder(.router(e)): node.runner.process(e, &packet, from: ingress, now: t, ports: &ports)
        case let .forwarder(.director(e)): node.runner.process(e, &packet, from: ingress, now: t, ports: &ports)
        case let .host(e): node.runner.process(e, &packet, from: ingress, now: t, ports: &ports)
        }
    }

    /// Puts the frames `node` emitted outside a delivery (a host's own traffic) onto their links.
    func drain(_ node: SimNode) {
        var ports = SimPorts(simulator: self, node: node)
        node.runner.drainEmitted(on: &ports)
    }

    /// A node's links as the runner sends on them: a forwarded frame's
    /// buffer travels on to the peer; copies (floods, emitted frames) get a
    /// buffer of their own.
    struct SimPorts: RunnerPorts {
        // Unmanaged and used through `_withUnsafeGuaranteedRef`: the
        // simulator and the node outlive every call, and a plain reference
        // here cost a retain and a release per frame (a third of the time).
        let simulator: Unmanaged<Simulator>
        let node: Unmanaged<SimNode>
        /// The buffer of the frame being delivered (-1: none).
        let buffer: Int32
        let count: Int

        init(simulator: Simulator, node: SimNode, buffer: Int32 = -1) {
            self.simulator = .passUnretained(simulator)
            self.node = .passUnretained(node)
            self.buffer = buffer
            count = node.logicalPortCount
        }

        @inline(__always)
        mutating func forward(_ packet: PacketBuffer, on port: PortID) -> Bool {
            simulator._withUnsafeGuaranteedRef { sim in
                node._withUnsafeGuaranteedRef { node in
                    sim.send(node, port.rawValue, buffer: buffer, offset: packet.offset, length: packet.length)
                }
            }
            return true
        }

        @inline(__always)
        mutating func send(copying frame: UnsafeRawBufferPointer, on port: PortID) -> Bool {
            simulator._withUnsafeGuaranteedRef { sim in
                node._withUnsafeGuaranteedRef { node in
                    let b = sim.takeBuffer()
                    (sim.buffers[Int(b)] + Simulator.headroom).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
                    sim.send(node, port.rawValue, buffer: b, offset: Simulator.headroom, length: frame.count)
                }
            }
            return true
        }

        @inline(__always)
        mutating func release(_ packet: PacketBuffer) {
            guard buffer >= 0 else { return }
            simulator._withUnsafeGuaranteedRef { $0.freeBuffers.append(buffer) }
        }
    }

    /// Sends on the element's PORT: with bonds, its active member.
    @inline(__always)
    func send(_ node: SimNode, _ port: Int, buffer: Int32, offset: Int, length: Int) {
        var port = port
        if node.hasBonds, let bonds = node.bonds, port >= 0, port < bonds.logicalCount { port = bonds.transmitPort(port) }
        guard port >= 0, port < node.ports.count, node.ports[port].link >= 0 else {
            node.linkDrops.count(Self.noLinkDrop)
            freeBuffers.append(buffer)
            return
        }
        let end = node.ports[port]
        guard linkLive[Int(end.link)] else {
            node.linkDrops.count(.linkDown)
            freeBuffers.append(buffer)
            return
        }
        guard length - 14 <= linkMTUs[Int(end.link)] else {
            node.linkDrops.count(Self.linkMTUDrop)
            freeBuffers.append(buffer)
            return
        }
        sequence &+= 1
        pushEvent(Event(time: now &+ options.linkDelay, sequence: sequence, node: end.peerNode, port: end.peerPort,
                        buffer: buffer, offset: Int32(offset), length: Int32(length)))
    }

    // MARK: - Event queue (FIFO ring, see `ring`)

    @inline(__always)
    func peekEvent() -> Event? {
        ringCount == 0 ? nil : ring[ringHead]
    }

    @inline(__always)
    func pushEvent(_ e: Event) {
        assert(e.time >= lastQueued, "events must be queued in time order")
        lastQueued = e.time
        if ringCount == ringCapacity { growRing() }
        ring[(ringHead + ringCount) & (ringCapacity - 1)] = e
        ringCount += 1
    }

    @inline(__always)
    func popEvent() -> Event {
        let e = ring[ringHead]
        ringHead = (ringHead + 1) & (ringCapacity - 1)
        ringCount -= 1
        return e
    }

    func growRing() {
        let bigger = UnsafeMutablePointer<Event>.allocate(capacity: ringCapacity * 2)
        for i in 0..<ringCount { bigger[i] = ring[(ringHead + i) & (ringCapacity - 1)] }
        ring.deallocate()
        ring = bigger
        ringHead = 0
        ringCapacity *= 2
    }
}

extension Simulator {
    /// What node `name`'s BGP and BFD did (state changes, routes,
    /// announcements) with virtual times; empty without `bgp:` or `bfd:`.
    public func controlPlaneLog(of name: String) -> [String] {
        nodeIndex[name].flatMap { nodes[$0].controlPlane?.log } ?? []
    }
}
