import Datapath
import Foundation
import LinuxNet
import Topology
import Wire

/// What `status` shows of one node's BGP speaker.
public struct BGPNodeStatus: Codable, Sendable {
    public struct Session: Codable, Sendable {
        public var peer: String
        public var peerASN: UInt32
        public var state: String
        /// Seconds since the session reached Established (nil: not established).
        public var uptimeSeconds: Double?
        public var prefixesReceived: Int
        public var prefixesAnnounced: Int
        /// The last state change and its reason.
        public var lastChange: String?
        public var bfd: String?
    }
    public struct Route: Codable, Sendable {
        public var prefix: String
        public var nextHops: [String]
    }
    public var asn: UInt32
    public var routerID: String
    public var sessions: [Session]
    /// The best paths (up to `multipath` next hops) the RIB hands the FIB.
    public var routes: [Route]
    /// What the node announces now.
    public var announced: [String]
}

/// What `status` shows of a BFD session that is not a BGP neighbour's: with
/// a static route's next hop, or answered for a neighbour (passive).
public struct BFDPeerStatus: Codable, Sendable {
    public var peer: String
    /// "static" (a next hop of a route with `bfd: true`) or "passive".
    public var role: String
    public var state: String
    /// The last state change and its diagnostic.
    public var lastChange: String?
    /// Static routes through the peer, and whether it carries traffic for each now.
    public var routes: [String]
}

/// One node's BGP and BFD (`bgp:`, `bfd:`): a thread inside the node's
/// namespace that owns its `BGPSpeaker` and carries out its actions with
/// kernel sockets — TCP to and from port 179 for the sessions, UDP 3784
/// for BFD (sent with TTL 255 from a port in 49152…65535; received with
/// the TTL checked, RFC 5881). LabPlan gives the node's kernel its
/// interface addresses, and the node's XDP program passes TCP and UDP 3784
/// to them up to it. The thread sleeps in poll(2) until a socket is ready,
/// the speaker's next deadline, or a wake-up (`setServable`, `stop`).
///
/// Learned routes go to `applyFIB` (the daemon applies them to the
/// router's table under its lock). A router announces its `announce:`
/// prefixes from the start; a director only those the daemon says it can
/// serve (`setServable`).
///
/// A node with `bfd:` and no `bgp:` runs here too, for BFD alone: its
/// static routes' next hops (`.nextHops` go to `applyStaticNextHops`) and
/// the sessions its neighbours start (see `BGPSpeaker`).
final class BGPController: @unchecked Sendable {
    let node: Node
    /// Nil: BFD only.
    let spec: BGPSpec?
    let namespace: String?
    let runtimeIndex: Int
    let applyFIB: (BGPFIBChange) -> Void
    let applyStaticNextHops: (IPv4Prefix, [IPv4Address]) -> Void
    let log: (String) -> Void

    private let lock = NSLock()
    private var stopRequested = false
    private var paused = false
    /// The prefixes the node may announce now (directors: set by the daemon).
    private var servable: Set<IPv4Prefix>
    private var snapshot: BGPNodeStatus?
    private var bfdSnapshot: [BFDPeerStatus] = []
    private var thread: Thread?
    private let wakePipe: WakePipe

    // The thread's own state.
    private var speaker: BGPSpeaker
    private var connections: [IPv4Address: Socket] = [:]
    private var pending: [IPv4Address: Socket] = [:]
    private var received: [IPv4Address: Set<IPv4Prefix>] = [:]
    private var establishedAt: [IPv4Address: Date] = [:]
    private var lastChange: [IPv4Address: String] = [:]
    private var bfdState: [IPv4Address: String] = [:]
    private var bfdChange: [IPv4Address: String] = [:]
    private var announced: Set<IPv4Prefix> = []
    private var listener: Socket?
    private var bfdReceive: Socket?
    private var bfdSend: Socket?

    /// `passivePeers`: neighbours this node waits for (another wirelab node
    /// with a lower address connects; see `passivePeers(of:in:)`).
    init(node: Node, namespace: String?, runtimeIndex: Int, passivePeers: Set<IPv4Address>,
         applyFIB: @escaping (BGPFIBChange) -> Void,
         applyStaticNextHops: @escaping (IPv4Prefix, [IPv4Address]) -> Void = { _, _ in },
         log: @escaping (String) -> Void) throws {
        guard node.runsControlPlane else { throw LabError("\(node.name) has neither bgp nor bfd") }
        self.node = node
        let spec = node.bgp
        self.spec = spec
        self.namespace = namespace
        self.runtimeIndex = runtimeIndex
        self.applyFIB = applyFIB
        self.applyStaticNextHops = applyStaticNextHops
        self.log = log
        wakePipe = try WakePipe(operation: "pipe for the BGP thread of \(node.name)")
        speaker = Self.makeSpeaker(node, passivePeers: passivePeers)
        servable = node.kind == .router ? Set(spec?.announce ?? []) : []
        snapshot = nil
        snapshot = makeSnapshot()
    }

    /// The node's speaker: its BGP neighbours, the next hops of its static
    /// routes with `bfd: true` (routers), and, with `bfd:`, answers to its
    /// connected neighbours' sessions. The simulator builds the same.
    static func makeSpeaker(_ node: Node, passivePeers: Set<IPv4Address>) -> BGPSpeaker {
        var configurations: [BGPSessionConfiguration] = []
        let neighbors = node.bgp?.neighbors ?? []
        let routerID = node.bgp?.routerID ?? node.addresses.first?.address ?? IPv4Address(rawValue: 0)
        for n in neighbors {
            let spec = node.bgp!
            let local = node.addresses.first { $0.canonical.contains(n.ip) && $0.length < 32 }?.address ?? spec.routerID
            configurations.append(BGPSessionConfiguration(
                localASN: spec.asn, routerID: spec.routerID, localAddress: local, peerAddress: n.ip, peerASN: n.asn,
                holdTime: UInt16(n.hold), keepaliveTime: n.keepalive.map(Double.init), connectRetryTime: 2,
                passive: passivePeers.contains(n.ip)))
        }
        let bfd = node.bfd ?? BFDSpec()
        let staticRoutes = node.kind == .router
            ? node.routes.filter(\.bfd).map { BFDStaticRoutes.Route(prefix: $0.destination, gateways: $0.nextHops) } : []
        return BGPSpeaker(neighbors: configurations, multipath: node.bgp?.multipath ?? 1,
                          bfdPeers: Set(neighbors.filter(\.bfd).map(\.ip)), staticRoutes: staticRoutes,
                          answersBFDFrom: node.bfd == nil ? [] : node.connectedSubnets.map(\.subnet),
                          bfdInterval: UInt32(bfd.interval.milliseconds * 1000), bfdMultiplier: UInt8(bfd.multiplier),
                          jitterSeed: UInt64(truncatingIfNeeded: routerID.rawValue))
    }

    /// A wirelab node waits for a wirelab neighbour with a lower address to
    /// connect (one TCP connection per pair: collision detection is not
    /// built); it connects to everyone else (BIRD and the like connect too,
    /// and refuse the second connection themselves).
    static func passivePeers(of node: Node, in topology: ResolvedTopology) -> Set<IPv4Address> {
        guard let spec = node.bgp else { return [] }
        var out = Set<IPv4Address>()
        for n in spec.neighbors {
            guard let other = topology.nodes.first(where: { o in o.addresses.contains { $0.address == n.ip } }),
                  let otherSpec = other.bgp, other.kind.isUserspace else { continue }
            // My end of this session: my address on the neighbour's subnet
            // (two nodes may peer over several subnets: each pair of ends
            // decides alone), else any of mine the other lists.
            let listed = node.addresses.filter { a in otherSpec.neighbors.contains { $0.ip == a.address } }
            guard let mine = (listed.first { $0.length < 32 && $0.canonical.contains(n.ip) } ?? listed.first)?.address
            else { continue }
            if mine.rawValue > n.ip.rawValue { out.insert(n.ip) }
        }
        return out
    }

    func start() {
        let t = Thread { [self] in
            do {
                if let namespace { try NetworkNamespace.run(namespace) { try self.loop() } } else { try self.loop() }
            } catch {
                log("bgp: \(node.name): the BGP thread stopped: \(error)")
            }
            closeAll()
        }
        t.name = "bgp-\(node.name)"
        thread = t
        t.start()
    }

    func stop() {
        lock.lock(); stopRequested = true; lock.unlock()
        wakePipe.wake()
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.005) }
        wakePipe.close()
    }

    /// Power cut (`wirelab fail NODE`): the speaker stops answering (its
    /// peers' hold timers and BFD detect it); power on: it goes on.
    func setPaused(_ on: Bool) {
        lock.lock(); paused = on; lock.unlock()
        wakePipe.wake()
    }

    /// The prefixes of `announce:` the node can serve now (directors).
    func setServable(_ prefixes: Set<IPv4Prefix>) {
        lock.lock()
        let changed = servable != prefixes
        servable = prefixes
        lock.unlock()
        if changed { wakePipe.wake() }
    }

    /// Nil for a node with BFD only.
    func status() -> BGPNodeStatus? {
        lock.lock(); defer { lock.unlock() }
        return snapshot
    }

    /// The BFD sessions that are no BGP neighbour's.
    func bfdStatus() -> [BFDPeerStatus] {
        lock.lock(); defer { lock.unlock() }
        return bfdSnapshot
    }

    // MARK: the thread

    static func now() -> Instant { Instant(nanoseconds: MonotonicClock.nanoseconds()) }

    private func stamp() -> String {
        ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                    formatOptions: [.withInternetDateTime, .withFractionalSeconds])
    }

    private func openSockets() throws {
        if spec != nil { try openListener() }
        try openBFDSockets()
    }

    private func openListener() throws {
        let where_ = namespace ?? "this namespace"
        let l = try Socket.open(.tcp, nonBlocking: true, operation: "opening BGP's listener in \(where_)")
        listener = l
        try l.setReuseAddress()
        try l.bind(to: .ipv4(.any, port: 179), operation: "binding TCP 179 in \(where_)")
        try l.listen(backlog: 16, operation: "listening on TCP 179 in \(where_)")
    }

    private func openBFDSockets() throws {
        let where_ = namespace ?? "this namespace"
        let r = try Socket.open(.udp, nonBlocking: true, operation: "opening BFD's UDP socket in \(where_)")
        bfdReceive = r
        try r.setReceiveTimeToLive()
        try r.setReuseAddress()
        try r.bind(to: .ipv4(.any, port: bfdControlPort), operation: "binding UDP 3784 in \(where_)")
        let t = try Socket.open(.udp, nonBlocking: true, operation: "opening BFD's send socket in \(where_)")
        bfdSend = t
        try t.setTimeToLive(255)
        // RFC 5881 §4: the source port is in 49152…65535.
        var port: UInt16 = 49152
        while true {
            do {
                try t.bind(to: .ipv4(.any, port: port))
                break
            } catch {
                guard port < 65535 else { throw LabError("no free UDP source port for BFD in \(where_): \(error)") }
                port += 1
            }
        }
    }

    private func closeAll() {
        for socket in Array(connections.values) + Array(pending.values) + [listener, bfdReceive, bfdSend].compactMap({ $0 }) {
            socket.close()
        }
        connections = [:]
        pending = [:]
        listener = nil; bfdReceive = nil; bfdSend = nil
    }

    private func loop() throws {
        try openSockets()
        let configuration = node.bfd ?? BFDSpec()
        if let spec {
            log("bgp: \(node.name) AS \(spec.asn) router-id \(spec.routerID): \(spec.neighbors.count) neighbour\(spec.neighbors.count == 1 ? "" : "s") "
                + spec.neighbors.map { "\($0.ip) AS \($0.asn) hold \($0.hold)s\($0.bfd ? " bfd" : "")\(speaker.sessions[$0.ip]?.configuration.passive == true ? " (passive)" : "")" }.joined(separator: ", ")
                + (spec.neighbors.contains(where: \.bfd) ? "; bfd \(configuration.interval) × \(configuration.multiplier)" : ""))
        }
        if !speaker.staticRoutes.routes.isEmpty || node.bfd != nil {
            log("bfd: \(node.name) \(configuration.interval) × \(configuration.multiplier): "
                + (speaker.staticRoutes.routes.isEmpty ? "" : "static next hops " + speaker.staticRoutes.gateways.sorted().map(\.description).joined(separator: ", ") + "; ")
                + "answers sessions from " + speaker.answersBFDFrom.map(\.description).joined(separator: ", "))
        }
        run(speaker.start(now: Self.now()))
        var wasPaused = false
        while true {
            lock.lock(); let stop = stopRequested, pause = paused, want = servable; lock.unlock()
            if stop {
                for peer in speaker.sessions.keys.sorted() { run(speaker.handle(.manualStop, peer: peer, now: Self.now())) }
                break
            }
            if pause {
                if !wasPaused { log("bgp: \(node.name): power cut, the speaker is silent") }
                wasPaused = true
                var fds = PollSet()
                fds.add(wakePipe.readDescriptor, .readable)
                _ = try? fds.wait(timeout: 500)
                wakePipe.drain()
                continue
            }
            if wasPaused { log("bgp: \(node.name): power on"); wasPaused = false }
            // Announce what became servable, withdraw what no longer is.
            let now = Self.now()
            let add = want.subtracting(announced), remove = announced.subtracting(want)
            if !add.isEmpty {
                log("\(stamp()) bgp: \(node.name) announces \(Self.ordered(add).map(\.description).joined(separator: ", "))")
                announced.formUnion(add)
                run(speaker.announce(Self.ordered(add), now: now))
            }
            if !remove.isEmpty {
                log("\(stamp()) bgp: \(node.name) withdraws \(Self.ordered(remove).map(\.description).joined(separator: ", "))")
                announced.subtract(remove)
                run(speaker.withdraw(Self.ordered(remove), now: now))
            }
            publish()

            var fds = PollSet()
            enum Slot { case wake, listener, bfd, connection(IPv4Address), pending(IPv4Address) }
            var slots: [Slot] = []
            fds.add(wakePipe.readDescriptor, .readable); slots.append(.wake)
            if let listener { fds.add(listener.descriptor, .readable); slots.append(.listener) }
            if let bfdReceive { fds.add(bfdReceive.descriptor, .readable); slots.append(.bfd) }
            for (peer, socket) in connections { fds.add(socket.descriptor, .readable); slots.append(.connection(peer)) }
            for (peer, socket) in pending { fds.add(socket.descriptor, .writable); slots.append(.pending(peer)) }
            var timeout: Int32 = 1000
            if let due = speaker.nextDeadline {
                let wait = due.nanoseconds &- min(due.nanoseconds, Self.now().nanoseconds)
                timeout = min(timeout, Int32((wait + 999_999) / 1_000_000))
            }
            _ = try? fds.wait(timeout: timeout)
            for (k, slot) in slots.enumerated() where !fds.returnedEvents(at: k).isEmpty {
                switch slot {
                case .wake: wakePipe.drain()
                case .listener: acceptConnections()
                case .bfd: while receiveBFD() {}
                case .connection(let peer): readConnection(peer)
                case .pending(let peer): finishConnect(peer)
                }
            }
            run(speaker.advance(to: Self.now()))
        }
        publish()
    }

    private func acceptConnections() {
        while let listener, let socket = (try? listener.accept(nonBlocking: true)) ?? nil {
            guard let peer = socket.peerAddress?.ipv4Address, let session = speaker.sessions[peer],
                  session.acceptsConnection, connections[peer] == nil else {
                socket.close()
                continue
            }
            pending.removeValue(forKey: peer)?.close()
            connections[peer] = socket
            run(speaker.handle(.tcpConnected, peer: peer, now: Self.now()))
        }
    }

    private func readConnection(_ peer: IPv4Address) {
        guard let socket = connections[peer] else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n: Int?
        do { n = try socket.receive(into: &buffer) } catch { n = 0 }
        guard let n else { return }   // nothing after all
        if n > 0 {
            run(speaker.handle(.received(Array(buffer[0..<n])), peer: peer, now: Self.now()))
        } else {
            // Closed by the peer, or failed.
            socket.close()
            connections[peer] = nil
            run(speaker.handle(.tcpFailed, peer: peer, now: Self.now()))
        }
    }

    private func finishConnect(_ peer: IPv4Address) {
        guard let socket = pending.removeValue(forKey: peer) else { return }
        if socket.pendingError == nil, connections[peer] == nil {
            connections[peer] = socket
            run(speaker.handle(.tcpConnected, peer: peer, now: Self.now()))
        } else {
            socket.close()
            run(speaker.handle(.tcpFailed, peer: peer, now: Self.now()))
        }
    }

    private func connect(_ peer: IPv4Address) {
        guard connections[peer] == nil, pending[peer] == nil, let session = speaker.sessions[peer] else { return }
        guard let socket = try? Socket.open(.tcp, nonBlocking: true) else {
            run(speaker.handle(.tcpFailed, peer: peer, now: Self.now()))
            return
        }
        try? socket.setReuseAddress()
        try? socket.bind(to: .ipv4(session.configuration.localAddress, port: 0))
        do {
            if try socket.connect(to: .ipv4(peer, port: 179)) {
                connections[peer] = socket
                run(speaker.handle(.tcpConnected, peer: peer, now: Self.now()))
            } else {
                pending[peer] = socket
            }
        } catch {
            socket.close()
            run(speaker.handle(.tcpFailed, peer: peer, now: Self.now()))
        }
    }

    /// One BFD datagram with its source and TTL; false when none is waiting.
    private func receiveBFD() -> Bool {
        guard let bfdReceive else { return false }
        var buffer = [UInt8](repeating: 0, count: 512)
        let received = buffer.withUnsafeMutableBytes { raw in (try? bfdReceive.receiveWithTimeToLive(into: raw)) ?? nil }
        guard let received else { return false }
        guard let peer = received.from.ipv4Address,
              bfdAcceptsSingleHop(ttl: received.timeToLive, destinationPort: bfdControlPort),
              let packet = try? BFDControlPacket.decode(buffer[0..<received.count]) else { return true }
        run(speaker.receive(packet, from: peer, now: Self.now()))
        return true
    }

    private func run(_ actions: [BGPSpeaker.Action]) {
        for action in actions {
            switch action {
            case .bgp(let peer, let a):
                switch a {
                case .connect: connect(peer)
                case .send(let bytes): send(bytes, to: peer)
                case .disconnect:
                    connections.removeValue(forKey: peer)?.close()
                    pending.removeValue(forKey: peer)?.close()
                case .stateChanged(let from, let to, let reason):
                    log("\(stamp()) bgp: \(node.name) neighbor \(peer): \(from) → \(to): \(reason)")
                    lastChange[peer] = "\(from) → \(to): \(reason)"
                    if to == .established { establishedAt[peer] = Date() } else if from == .established { establishedAt[peer] = nil }
                case .routes(_, let routes, let withdrawn):
                    received[peer, default: []].formUnion(routes.map(\.prefix))
                    received[peer, default: []].subtract(withdrawn)
                case .peerDown:
                    received[peer] = nil
                }
            case .bfd(let peer, let a):
                switch a {
                case .send(let packet):
                    // A lost datagram is what BFD is made for: errors are not retried.
                    _ = packet.encode().withUnsafeBytes { b in try? bfdSend?.send(b, to: .ipv4(peer, port: bfdControlPort)) }
                case .stateChanged(let from, let to, let diagnostic):
                    log("\(stamp()) bfd: \(node.name) neighbor \(peer): \(from) → \(to) (\(diagnostic))")
                    bfdState[peer] = "\(to)"
                    bfdChange[peer] = "\(from) → \(to) (\(diagnostic))"
                }
            case .fib(let change):
                log("\(stamp()) bgp: \(node.name) fib \(change.prefix) → \(change.nextHops.isEmpty ? "removed" : change.nextHops.map(\.description).joined(separator: ", "))")
                if node.kind == .router { applyFIB(change) }
            case .nextHops(let prefix, let gateways):
                log("\(stamp()) bfd: \(node.name) static route \(prefix) → \(gateways.isEmpty ? "no next hop left, removed" : gateways.map(\.description).joined(separator: ", "))")
                applyStaticNextHops(prefix, gateways)
            }
        }
    }

    private func send(_ bytes: [UInt8], to peer: IPv4Address) {
        guard let socket = connections[peer] else { return }
        var off = 0
        var waited = 0
        while off < bytes.count {
            do {
                let n = try bytes[off...].withUnsafeBytes { raw in
                    Result { () throws(LinuxNetError) in try socket.send(raw) }
                }.get()
                off += n
            } catch {
                // Full: wait a little (at most 1 s in all); a failure shows on the next read.
                guard error.errno == .resourceTemporarilyUnavailable, waited < 20 else { return }
                _ = try? socket.wait(for: .writable, timeout: 50)
                waited += 1
            }
        }
    }

    private func publish() {
        let s = makeSnapshot(), b = makeBFDSnapshot()
        lock.lock(); snapshot = s; bfdSnapshot = b; lock.unlock()
    }

    private func makeBFDSnapshot() -> [BFDPeerStatus] {
        let neighbours = Set(spec?.neighbors.map(\.ip) ?? [])
        let statics = speaker.staticRoutes
        return speaker.bfd.keys.sorted().filter { !neighbours.contains($0) }.map { peer in
            let session = speaker.bfd[peer]!
            let routes = statics.routes.filter { $0.gateways.contains(peer) }.map {
                "\($0.prefix)\(statics.current[$0.prefix]?.contains(peer) == true ? "" : " (out)")"
            }
            return BFDPeerStatus(peer: peer.description, role: session.configuration.passive ? "passive" : "static",
                                 state: "\(session.state)", lastChange: bfdChange[peer], routes: routes)
        }
    }

    private func makeSnapshot() -> BGPNodeStatus? {
        guard let spec else { return nil }
        let sessions = spec.neighbors.map { n -> BGPNodeStatus.Session in
            let session = speaker.sessions[n.ip]
            let established = session?.state == .established
            return .init(peer: n.ip.description, peerASN: n.asn, state: session.map { "\($0.state)" } ?? "?",
                         uptimeSeconds: establishedAt[n.ip].map { Date().timeIntervalSince($0) },
                         prefixesReceived: received[n.ip]?.count ?? 0,
                         prefixesAnnounced: established ? announced.count : 0,
                         lastChange: lastChange[n.ip],
                         bfd: speaker.bfd[n.ip].map { _ in bfdState[n.ip] ?? "\(speaker.bfd[n.ip]!.state)" })
        }
        let routes = speaker.rib.fib.sorted { ($0.key.address.rawValue, $0.key.length) < ($1.key.address.rawValue, $1.key.length) }.map {
            BGPNodeStatus.Route(prefix: $0.key.description, nextHops: $0.value.map(\.description))
        }
        return BGPNodeStatus(asn: spec.asn, routerID: spec.routerID.description, sessions: sessions, routes: routes,
                             announced: Self.ordered(announced).map(\.description))
    }

    static func ordered(_ prefixes: Set<IPv4Prefix>) -> [IPv4Prefix] {
        prefixes.sorted { ($0.address.rawValue, $0.length) < ($1.address.rawValue, $1.length) }
    }
}
