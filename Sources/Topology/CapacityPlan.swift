// `wirelab plan`: the capacity a topology offers its services, in normal
// operation and under every single failure — pure computation on the
// resolved model, nothing created. docs/plan.md says what is modelled:
//
// - Traffic flows from the ingress (hosts that are not real servers) to the
//   public addresses; DNS splits it evenly over the public addresses (a
//   router's static NAT public address, else the VIP itself).
// - A NAT'd public address is reached through its NAT router first.
// - A VIP is carried by its active directors, evenly: in each VRRP group
//   that holds the VIP, the highest-priority live member (the master); a
//   director serving the VIP outside any VRRP group is active too (active/
//   active, e.g. Maglev behind ECMP). Each active director receives its
//   share evenly over its live NICs (routes' ECMP over one next hop per NIC).
// - Between two points, traffic follows the cabling: at every node it splits
//   evenly over the links on a shortest path (hop count) to the destination,
//   as ECMP routing does over equal-cost paths. Only switches and routers
//   forward; hosts and directors only send and receive.
// - A NIC's ports (capacity.nics, or a bond's members) are a bond: the
//   first live port carries it.
// - A director hands its share to its live real servers by weight (rr, lc:
//   evenly); NAT/FULLNAT replies cross it again (its node/pps load doubles),
//   DR/TUN replies bypass it.
// - A flow takes one path: its limit is the smallest capacity on the widest
//   single path the traffic uses.
import Wire

public struct CapacityPlan: Sendable {
    /// A capacity the plan checks.
    public enum Element: Hashable, Sendable, Comparable {
        /// Link `index` (in `topology.links`), in the direction from its end a (forward) or b.
        case link(Int, forward: Bool)
        /// NIC `index` of a node (`CapacityPlan.nics(of:)`), received (`in`) or sent.
        case nic(node: String, index: Int, incoming: Bool)
        /// The node's `node:` bits per second.
        case node(String)
        /// The node's `pps:`, converted at the packet size.
        case nodePackets(String)

        public static func < (a: Element, b: Element) -> Bool { a.sortKey < b.sortKey }
        var isPacketRate: Bool { if case .nodePackets = self { return true } else { return false } }
        var sortKey: String {
            switch self {
            case let .link(i, f): return "2 \(String(100_000 + i)) \(f ? 0 : 1)"
            case let .nic(n, i, inc): return "1 \(n) \(String(1000 + i)) \(inc ? 0 : 1)"
            case let .node(n): return "0 \(n) a"
            case let .nodePackets(n): return "0 \(n) b"
            }
        }
    }

    /// One failure: a node (router, switch, director, real server) or a link.
    public enum Failure: Hashable, Sendable, CustomStringConvertible {
        case node(String)
        case link(Int, String)
        public var description: String {
            switch self {
            case let .node(n): return n
            case let .link(_, name): return "link \(name)"
            }
        }
    }

    /// One situation: normal operation (no failure) or one failure.
    public struct Scenario: Sendable {
        public var failure: Failure?
        /// Bits per second the system serves at most; nil = unknown (no
        /// element on the traffic's way has a capacity).
        public var capacity: Double?
        /// Public addresses nobody can reach in this situation (their DNS
        /// share is lost).
        public var unreachable: [String]
        /// The element that fills first (nil when unknown).
        public var bottleneck: Element?
        /// Load per element, as a share of the traffic offered (1 = all of it).
        public var loads: [Element: Double]
    }

    public struct Limit: Sendable {
        public var name: String
        /// Bits per second; nil = unknown.
        public var rate: Double?
    }

    public var topology: String
    public var ingress: [String]
    public var publicAddresses: [String]
    public var normal: Scenario
    public var failures: [Scenario]
    /// Per public address, alone.
    public var publicLimits: [Limit]
    /// Per VIP, over all its public addresses.
    public var vipLimits: [Limit]
    /// The largest rate one flow can reach (one path, one NIC per node).
    public var flowLimit: Double?
    /// Bytes per packet used to turn `pps:` into bits per second.
    public var packetBytes: Int
    /// Kinds of capacity missing on the traffic's way (for the "unknown" hint).
    public var missing: [String]
    /// Display names of elements.
    public var names: [Element: String]
    /// Capacity of each element, bits per second.
    public var capacities: [Element: Double]

    /// The failure that costs the most capacity (nil when none costs any).
    public var worst: Scenario? {
        guard let base = normal.capacity else {
            // Capacity unknown: the failure that leaves the most public addresses unreachable.
            return failures.filter { $0.unreachable.count > normal.unreachable.count }.max { $0.unreachable.count < $1.unreachable.count }
        }
        let w = failures.min { ($0.capacity ?? .infinity) < ($1.capacity ?? .infinity) }
        guard let w, let c = w.capacity, c < base * (1 - 1e-9) else { return nil }
        return w
    }

    public static let defaultPacketBytes = 1500

    /// Plans `topology`; `packetBytes` converts `pps:` to bits per second.
    public init(_ topology: ResolvedTopology, packetBytes: Int = defaultPacketBytes) {
        let m = PlanModel(topology, packetBytes: packetBytes)
        self.topology = topology.name
        self.packetBytes = packetBytes
        ingress = m.clients
        publicAddresses = m.publics.map(\.name)
        normal = m.scenario(failed: nil)
        var failures: [Scenario] = []
        for n in topology.nodes where n.kind != .host || m.realNodes.contains(n.name) {
            failures.append(m.scenario(failed: .node(n.name)))
        }
        for (i, l) in topology.links.enumerated() {
            failures.append(m.scenario(failed: .link(i, "\(l.a) <-> \(l.b)")))
        }
        self.failures = failures
        publicLimits = m.publics.map { p in Limit(name: p.name, rate: m.limit(only: [p.name])) }
        vipLimits = m.vips.map { v in Limit(name: v.description, rate: m.limit(only: m.publics.filter { $0.vip == v }.map(\.name))) }
        flowLimit = m.flowLimit()
        names = m.names
        capacities = m.capacities
        missing = m.missing(normal)
    }
}

/// The graph and the traffic model behind `CapacityPlan`.
struct PlanModel {
    struct Public { var name: String; var vip: IPv4Address; var natRouters: [String] }
    struct Port: Hashable { var node: String; var interface: String }
    struct Edge { var link: Int; var forward: Bool; var from: Port; var to: Port }

    let t: ResolvedTopology
    let packetBits: Double
    var clients: [String] = []
    var realNodes: Set<String> = []
    var vips: [IPv4Address] = []
    var publics: [Public] = []
    var nodeByAddress: [IPv4Address: String] = [:]
    /// Per node, its NICs (lists of interface names, bond order).
    var nics: [String: [[String]]] = [:]
    var nicOf: [Port: Int] = [:]
    var names: [CapacityPlan.Element: String] = [:]
    var capacities: [CapacityPlan.Element: Double] = [:]

    init(_ t: ResolvedTopology, packetBytes: Int) {
        self.t = t
        packetBits = Double(packetBytes * 8)
        for n in t.nodes { for a in n.addresses where nodeByAddress[a.address] == nil { nodeByAddress[a.address] = n.name } }
        for n in t.nodes where n.kind == .director {
            for s in n.services {
                if !vips.contains(s.vip) { vips.append(s.vip) }
                for r in s.reals { if let h = nodeByAddress[r.ip] { realNodes.insert(h) } }
            }
        }
        clients = t.nodes.filter { $0.kind == .host && !realNodes.contains($0.name) }.map(\.name)
        for v in vips {
            let nat = t.nodes.filter { $0.kind == .router }.flatMap { r in r.nat.filter { $0.privateAddress == v }.map { (r.name, $0.publicAddress) } }
            if nat.isEmpty { publics.append(Public(name: v.description, vip: v, natRouters: [])) }
            for (r, p) in nat {
                if let i = publics.firstIndex(where: { $0.name == p.description }) { publics[i].natRouters.append(r) } else {
                    publics.append(Public(name: p.description, vip: v, natRouters: [r]))
                }
            }
        }
        for n in t.nodes {
            var groups = n.capacity.nics.filter { !$0.isEmpty }
            // A bond is one NIC (its first live member carries it), unless `nics:` says otherwise.
            for b in n.bonds where !b.members.contains(where: Set(groups.flatMap { $0 }).contains) { groups.append(b.members) }
            let listed = Set(groups.flatMap { $0 })
            for i in n.interfaces where !listed.contains(i.name) { groups.append([i.name]) }
            nics[n.name] = groups
            for (gi, g) in groups.enumerated() {
                for p in g { nicOf[Port(node: n.name, interface: p)] = gi }
                let label = g.count == 1 ? "\(n.name):\(g[0])" : "\(n.name) NIC \(g.joined(separator: "+"))"
                for incoming in [true, false] {
                    let e = CapacityPlan.Element.nic(node: n.name, index: gi, incoming: incoming)
                    names[e] = "\(label) \(incoming ? "in" : "out")"
                    if let c = n.capacity.nic { capacities[e] = c.value }
                }
            }
            names[.node(n.name)] = n.name
            names[.nodePackets(n.name)] = "\(n.name) (packets)"
            if let c = n.capacity.node { capacities[.node(n.name)] = c.value }
            if let c = n.capacity.pps { capacities[.nodePackets(n.name)] = c.value * packetBits }
        }
        for (i, l) in t.links.enumerated() {
            names[.link(i, forward: true)] = "\(l.a) -> \(l.b)"
            names[.link(i, forward: false)] = "\(l.b) -> \(l.a)"
            if let b = l.bandwidth { capacities[.link(i, forward: true)] = b.value; capacities[.link(i, forward: false)] = b.value }
        }
    }

    func node(_ name: String) -> Node? { t.node(named: name) }

    // MARK: One situation

    /// The live graph under one failure.
    struct Live {
        var edgesFrom: [String: [Edge]] = [:]
        var edgesInto: [String: [Edge]] = [:]
        var deadNodes: Set<String> = []
        /// Per node, NIC index → its carrying port.
        var activePort: [String: [Int: String]] = [:]
    }

    func live(_ failed: CapacityPlan.Failure?) -> Live {
        var g = Live()
        if case let .node(n) = failed { g.deadNodes.insert(n) }
        var deadLink: Int?
        if case let .link(i, _) = failed { deadLink = i }
        func linkUp(_ i: Int) -> Bool {
            let l = t.links[i]
            return i != deadLink && !g.deadNodes.contains(l.a.node) && !g.deadNodes.contains(l.b.node)
        }
        var upPorts: Set<Port> = []
        for (i, l) in t.links.enumerated() where linkUp(i) {
            upPorts.insert(Port(node: l.a.node, interface: l.a.interface))
            upPorts.insert(Port(node: l.b.node, interface: l.b.interface))
        }
        for n in t.nodes where !g.deadNodes.contains(n.name) {
            for (gi, ports) in (nics[n.name] ?? []).enumerated() {
                if let p = ports.first(where: { upPorts.contains(Port(node: n.name, interface: $0)) }) { g.activePort[n.name, default: [:]][gi] = p }
            }
        }
        func active(_ p: Port) -> Bool { nicOf[p].map { g.activePort[p.node]?[$0] == p.interface } ?? false }
        for (i, l) in t.links.enumerated() where linkUp(i) {
            let a = Port(node: l.a.node, interface: l.a.interface), b = Port(node: l.b.node, interface: l.b.interface)
            guard active(a), active(b) else { continue }
            for e in [Edge(link: i, forward: true, from: a, to: b), Edge(link: i, forward: false, from: b, to: a)] {
                g.edgesFrom[e.from.node, default: []].append(e)
                g.edgesInto[e.to.node, default: []].append(e)
            }
        }
        return g
    }

    func forwards(_ name: String) -> Bool {
        let k = node(name)?.kind
        return k == .switch || k == .router
    }

    /// Hop distances to `dst` (arriving on one of `ports`, any port if nil),
    /// through forwarding nodes only.
    func distances(_ g: Live, to dst: String, ports: Set<String>?) -> [String: Int] {
        var dist = [dst: 0], queue = [dst], head = 0
        while head < queue.count {
            let y = queue[head]; head += 1
            for e in g.edgesInto[y] ?? [] {
                if y == dst, let ports, !ports.contains(e.to.interface) { continue }
                let x = e.from.node
                guard dist[x] == nil else { continue }
                dist[x] = dist[y]! + 1
                if forwards(x) { queue.append(x) }
            }
        }
        return dist
    }

    /// The edges leaving `x` on a shortest path to `dst`.
    func nextEdges(_ g: Live, _ x: String, _ dist: [String: Int], dst: String, ports: Set<String>?) -> [Edge] {
        guard let dx = dist[x] else { return [] }
        return (g.edgesFrom[x] ?? []).filter { e in
            let y = e.to.node
            guard dist[y] == dx - 1, y == dst || forwards(y) else { return false }
            return y != dst || ports.map { $0.contains(e.to.interface) } ?? true
        }
    }

    /// Sends `amount` from `src` to `dst` (its `ports`, or any), splitting
    /// evenly at every node over the shortest-path links; adds the loads.
    /// False when `dst` cannot be reached.
    @discardableResult
    func spread(_ amount: Double, _ g: Live, from src: String, to dst: String, ports: Set<String>?,
                into loads: inout [CapacityPlan.Element: Double]) -> Bool {
        if src == dst { return true }
        let dist = distances(g, to: dst, ports: ports)
        guard let d0 = dist[src], d0 > 0 else { return false }
        var flow = [src: amount]
        for level in stride(from: d0, to: 0, by: -1) {
            for (x, f) in flow where dist[x] == level {
                let next = nextEdges(g, x, dist, dst: dst, ports: ports)
                guard !next.isEmpty else { continue }
                let share = f / Double(next.count)
                for e in next {
                    loads[.link(e.link, forward: e.forward), default: 0] += share
                    loads[.nic(node: x, index: nicOf[e.from]!, incoming: false), default: 0] += share
                    loads[.nic(node: e.to.node, index: nicOf[e.to]!, incoming: true), default: 0] += share
                    if e.to.node != dst { flow[e.to.node, default: 0] += share }
                }
                flow[x] = 0
            }
        }
        return true
    }

    /// The VIP's reals (node names) and weights at one director.
    func reals(of vip: IPv4Address, at director: Node) -> [(node: String?, weight: Double)] {
        var out: [IPv4Address: (String?, Double)] = [:], order: [IPv4Address] = []
        for s in director.services where s.vip == vip {
            let weighted = ![.rr, .lc].contains(s.scheduler)
            for r in s.reals where r.weight > 0 {
                if out[r.ip] == nil { order.append(r.ip); out[r.ip] = (nodeByAddress[r.ip], 0) }
                out[r.ip]!.1 += weighted ? Double(r.weight) : 1
            }
        }
        return order.map { (out[$0]!.0, out[$0]!.1) }
    }

    /// Whether a director's NAT/FULLNAT replies come back through it.
    func repliesThrough(_ vip: IPv4Address, at director: Node) -> Bool {
        director.services.contains { $0.vip == vip && ($0.mode == .nat || $0.mode == .fullnat) }
    }

    /// The active directors of `vip`: VRRP masters, and directors serving it outside VRRP.
    func activeDirectors(_ vip: IPv4Address, _ g: Live) -> [Node] {
        let serving = t.nodes.filter { $0.kind == .director && !g.deadNodes.contains($0.name) && $0.services.contains { $0.vip == vip } }
        var active: [Node] = [], masters: [Int: (Node, Int)] = [:], groupOrder: [Int] = []
        for d in serving {
            let groups = d.vrrp.filter { $0.vips.contains(vip) }
            if groups.isEmpty { active.append(d); continue }
            for grp in groups {
                // A member whose group interface is cut off hears nobody and is heard by nobody.
                // (A bond's NIC is its members'.)
                let port = d.bonds.first { $0.name == grp.interface }?.members.first ?? grp.interface
                let up = grp.interface.isEmpty || nicOf[Port(node: d.name, interface: port)].map { g.activePort[d.name]?[$0] != nil } ?? false
                guard up else { continue }
                if !groupOrder.contains(grp.group) { groupOrder.append(grp.group) }
                if masters[grp.group].map({ grp.priority > $0.1 }) ?? true { masters[grp.group] = (d, grp.priority) }
            }
        }
        for gid in groupOrder { if let (d, _) = masters[gid], !active.contains(where: { $0.name == d.name }) { active.append(d) } }
        return active
    }

    /// Loads of `share` of the traffic sent to public address `p`; false when it cannot be served.
    func route(_ p: Public, share: Double, _ g: Live, into loads: inout [CapacityPlan.Element: Double]) -> Bool {
        var trial = loads
        let sources = clients.filter { !g.deadNodes.contains($0) }
        // Stage 1: the clients that reach the NAT router (if any) and an active director.
        var directors = activeDirectors(p.vip, g).filter { d in
            reals(of: p.vip, at: d).isEmpty || reals(of: p.vip, at: d).contains { r in
                r.node == nil || (!g.deadNodes.contains(r.node!) && canReach(g, from: d.name, to: r.node!))
            }
        }
        // Where the clients' traffic enters: the live NAT routers of the public address (evenly), or the clients themselves.
        let entries: [String?] = p.natRouters.isEmpty ? [nil] : p.natRouters.filter { !g.deadNodes.contains($0) }.map { $0 }
        var plans: [(source: String, entry: String?, directors: [Node])] = []
        for s in sources {
            // The nearest live NAT routers (as ECMP would pick them), not one reached through another.
            let hops: [Int?] = entries.map { e in e.map { s == $0 ? 0 : distances(g, to: $0, ports: nil)[s] } ?? 0 }
            let nearest = hops.compactMap { $0 }.min()
            for (e, h) in zip(entries, hops) {
                if h == nil || h != nearest { continue }
                let mine = directors.filter { canReach(g, from: e ?? s, to: $0.name) }
                if !mine.isEmpty { plans.append((s, e, mine)) }
            }
        }
        let reaching = Set(plans.map(\.source))
        guard !reaching.isEmpty else { return false }
        var atDirector: [String: Double] = [:]
        for s in sources where reaching.contains(s) {
            let mine = plans.filter { $0.source == s }
            for plan in mine {
                let a = share / Double(reaching.count) / Double(mine.count)
                var from = s
                if let r = plan.entry {
                    spread(a, g, from: s, to: r, ports: nil, into: &trial)
                    addNode(r, a, into: &trial)
                    from = r
                }
                for d in plan.directors {
                    let part = a / Double(plan.directors.count)
                    let live = (g.activePort[d.name] ?? [:]).sorted { $0.key < $1.key }.map(\.value)
                    let usable = live.filter { canReach(g, from: from, to: d.name, ports: [$0]) }
                    for port in usable { spread(part / Double(usable.count), g, from: from, to: d.name, ports: [port], into: &trial) }
                    atDirector[d.name, default: 0] += part
                }
            }
        }
        // Stage 2: each director to its reals.
        for d in directors where atDirector[d.name] != nil {
            let a = atDirector[d.name]!
            addNode(d.name, repliesThrough(p.vip, at: d) ? 2 * a : a, into: &trial)
            let rs = reals(of: p.vip, at: d).filter { r in r.node.map { !g.deadNodes.contains($0) && canReach(g, from: d.name, to: $0) } ?? false }
            let total = rs.reduce(0) { $0 + $1.weight }
            for r in rs {
                let part = a * r.weight / total
                let live = (g.activePort[r.node!] ?? [:]).sorted { $0.key < $1.key }.map(\.value)
                let usable = live.filter { canReach(g, from: d.name, to: r.node!, ports: [$0]) }
                for port in usable { spread(part / Double(usable.count), g, from: d.name, to: r.node!, ports: [port], into: &trial) }
                addNode(r.node!, part, into: &trial)
            }
        }
        loads = trial
        return true
    }

    func addNode(_ n: String, _ a: Double, into loads: inout [CapacityPlan.Element: Double]) {
        loads[.node(n), default: 0] += a
        loads[.nodePackets(n), default: 0] += a
    }

    func canReach(_ g: Live, from src: String, to dst: String, ports: Set<String>? = nil) -> Bool {
        src == dst || distances(g, to: dst, ports: ports)[src] != nil
    }

    /// Loads when the traffic goes to `only` (public address names; all when nil), split evenly.
    func loads(_ g: Live, only: [String]?) -> (loads: [CapacityPlan.Element: Double], unreachable: [String]) {
        let targets = publics.filter { only?.contains($0.name) ?? true }
        var loads: [CapacityPlan.Element: Double] = [:], unreachable: [String] = []
        for p in targets where !route(p, share: 1 / Double(targets.count), g, into: &loads) { unreachable.append(p.name) }
        return (loads, unreachable)
    }

    /// The largest total (bits/s) the loads allow, and the element that fills first; nil = no limit known.
    func fit(_ loads: [CapacityPlan.Element: Double]) -> (Double, CapacityPlan.Element)? {
        var best: (Double, CapacityPlan.Element)?
        for (e, l) in loads.sorted(by: { $0.key < $1.key }) where l > 1e-12 {
            guard let c = capacities[e] else { continue }
            let x = c / l
            if best.map({ x < $0.0 * (1 - 1e-12) }) ?? true { best = (x, e) }
        }
        return best
    }

    func scenario(failed: CapacityPlan.Failure?) -> CapacityPlan.Scenario {
        let g = live(failed)
        let (l, unreachable) = loads(g, only: nil)
        let served = publics.isEmpty ? 0 : Double(publics.count - unreachable.count) / Double(publics.count)
        let f = fit(l)
        let capacity: Double? = served == 0 ? (publics.isEmpty ? nil : 0) : f.map { $0.0 * served }
        return CapacityPlan.Scenario(failure: failed, capacity: capacity, unreachable: unreachable, bottleneck: f?.1, loads: l)
    }

    /// The capacity for traffic to `only` these public addresses, normal operation.
    func limit(only: [String]) -> Double? {
        let (l, unreachable) = loads(live(nil), only: only)
        if !unreachable.isEmpty && unreachable.count == only.count { return 0 }
        return fit(l).map { $0.0 * Double(only.count - unreachable.count) / Double(only.count) }
    }

    // MARK: One flow

    /// The widest single path the plan's traffic takes, normal operation.
    func flowLimit() -> Double? {
        let g = live(nil)
        var best = 0.0
        let inf = Double.infinity
        func nodeCap(_ n: String) -> Double { min(capacities[.node(n)] ?? inf, capacities[.nodePackets(n)] ?? inf) }
        for p in publics {
            for s in clients {
                for e in p.natRouters.isEmpty ? [nil] : p.natRouters.map({ Optional($0) }) {
                    var start = nodeCap(s), from = s
                    if let r = e {
                        guard canReach(g, from: s, to: r) else { continue }
                        start = min(start, widest(g, from: s, to: r, ports: nil)); from = r
                    }
                    for d in activeDirectors(p.vip, g) where canReach(g, from: from, to: d.name) {
                        let toDirector = min(start, widest(g, from: from, to: d.name, ports: nil))
                        let rs = reals(of: p.vip, at: d).compactMap(\.node).filter { canReach(g, from: d.name, to: $0) }
                        let out = rs.isEmpty ? inf : rs.map { widest(g, from: d.name, to: $0, ports: nil) }.max()!
                        best = max(best, min(toDirector, out))
                    }
                }
            }
        }
        return best.isInfinite || best == 0 ? nil : best
    }

    /// The largest bottleneck of one shortest path from `src` to `dst`.
    func widest(_ g: Live, from src: String, to dst: String, ports: Set<String>?) -> Double {
        let inf = Double.infinity
        let dist = distances(g, to: dst, ports: ports)
        guard dist[src] != nil else { return 0 }
        var memo: [String: Double] = [:]
        func w(_ x: String) -> Double {
            if x == dst { return inf }
            if let v = memo[x] { return v }
            var best = 0.0
            for e in nextEdges(g, x, dist, dst: dst, ports: ports) {
                let y = e.to.node
                let caps = [capacities[.link(e.link, forward: e.forward)], capacities[.nic(node: x, index: nicOf[e.from]!, incoming: false)],
                            capacities[.nic(node: y, index: nicOf[e.to]!, incoming: true)], capacities[.node(y)], capacities[.nodePackets(y)]]
                best = max(best, min(caps.compactMap { $0 }.min() ?? inf, w(y)))
            }
            memo[x] = best
            return best
        }
        return w(src)
    }

    /// What kind of capacity is missing where traffic goes, for the "unknown" hint.
    func missing(_ s: CapacityPlan.Scenario) -> [String] {
        var out: [String] = []
        let loaded = s.loads.filter { $0.value > 1e-12 }.map(\.key)
        if loaded.contains(where: { if case .link = $0 { return capacities[$0] == nil } else { return false } }) {
            out.append("bandwidth: on links")
        }
        if loaded.contains(where: { if case let .nic(n, _, _) = $0 { return node(n)?.capacity.isEmpty ?? false } else { return false } }) {
            out.append("capacity: on nodes")
        }
        return out
    }
}
