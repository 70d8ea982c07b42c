// Stage 2: resolve the raw nodes and links into the typed model and check
// everything that relates one part of the file to another: link ends,
// switch ports, L2 segments, duplicate addresses, next hops, real servers,
// VRRP, checks.
import Wire

struct TopologyResolver {
    let r: Reader
    let raw: RawTopology
    let file: String
    var d: Diagnostics { r.d }

    /// Lab name for derived MACs when the name itself was bad.
    var lab: String { raw.name ?? "lab" }

    func resolve() -> ResolvedTopology {
        let nodes = raw.nodes
        var index: [String: Int] = [:]
        for (i, n) in nodes.enumerated() where index[n.name] == nil { index[n.name] = i }
        let nodeNames = nodes.map(\.name)

        // MARK: Links and their ends
        var used: [Endpoint: SourceLocation] = [:]
        var links: [Link] = []
        // When a link end could not be resolved, "not connected" errors are
        // likely its echo: don't report them.
        var endsFailed = !raw.linksComplete
        for rl in raw.links {
            var good = true
            for end in rl.ends {
                let e = end.endpoint
                guard let ni = index[e.node] else {
                    let hint = Suggest.didYouMean(e.node, nodeNames) ?? "nodes: \(Suggest.list(nodeNames))"
                    d.error(end.location, "link end '\(e)' names no node", hint: hint)
                    endsFailed = true
                    good = false
                    continue
                }
                let node = nodes[ni]
                if let kind = node.kind {
                    if kind.declaresInterfaces {
                        if let bond = node.interfaces.first(where: { $0.name == e.interface && !$0.members.isEmpty }) {
                            d.error(end.location, "link end '\(e)' names a bond; links end on its members",
                                    hint: "name one of its members: \(bond.members.map { "\(e.node):\($0)" }.joined(separator: ", "))")
                            endsFailed = true
                            good = false
                            continue
                        }
                        if node.interfacesKnown, !node.portNames.contains(e.interface) {
                            let names = node.portNames
                            let list = names.isEmpty ? "'\(e.node)' declares no interfaces; add interfaces: { \(e.interface): { ip: … } }"
                                : "'\(e.node)' declares: \(Suggest.list(names))"
                            d.error(end.location, "link end '\(e)' names an interface '\(e.node)' does not declare",
                                    hint: Suggest.didYouMean(e.interface, names).map { "\($0) \(list)" } ?? list)
                            endsFailed = true
                            good = false
                            continue
                        }
                    } else if let (problem, hint) = RawDecoder.interfaceNameProblem(e.interface) {
                        d.error(end.location, "switch port name '\(e.interface)' \(problem)", hint: hint)
                        endsFailed = true
                        good = false
                        continue
                    }
                }
                if let first = used[e] {
                    let hint = node.kind == .switch
                        ? "each port takes one link; use another port name such as '\(e.node):\(freshPort(for: e.node))'"
                        : "each interface takes one link; declare another interface, or connect both through a switch"
                    d.error(end.location, "interface '\(e)' is already used by the link at \(first.lineColumn)", hint: hint)
                    good = false
                    continue
                }
                used[e] = end.location
            }
            if good {
                links.append(Link(a: rl.ends[0].endpoint, b: rl.ends[1].endpoint, mtu: rl.mtu, bandwidth: rl.bandwidth, location: rl.location))
            }
        }
        var linkOf: [Endpoint: Link] = [:]
        var portsOf: [String: [(Endpoint, Link)]] = [:]   // link ends per node, in link order
        for l in links {
            linkOf[l.a] = l
            linkOf[l.b] = l
            portsOf[l.a.node, default: []].append((l.a, l))
            portsOf[l.b.node, default: []].append((l.b, l))
        }
        // Nodes some link names, even through an end with an error.
        let nodesNamedInLinks = Set(raw.links.flatMap(\.ends).map(\.endpoint.node))

        // MARK: Interfaces, switch ports, MACs
        var resolvedNodes: [Node] = []
        var addressLocations: [Endpoint: [SourceLocation]] = [:]
        var macLocations: [Endpoint: SourceLocation] = [:]
        for n in nodes {
            let kind = n.kind ?? .host
            var interfaces: [Interface] = []
            var bonds: [Bond] = []
            if kind.declaresInterfaces {
                var portNamed: [String: SourceLocation] = [:]
                for ri in n.interfaces where ri.members.isEmpty { portNamed[ri.name] = ri.location }
                for ri in n.interfaces {
                    guard !ri.members.isEmpty else {
                        let e = Endpoint(node: n.name, interface: ri.name)
                        let link = linkOf[e]
                        interfaces.append(Interface(name: ri.name, mac: ri.mac ?? MACAddress.derived(from: "\(lab)/\(n.name)/\(ri.name)"),
                                                    addresses: ri.addresses, mtu: link?.mtu ?? TopologyLimits.defaultMTU,
                                                    peer: link?.peer(of: e), location: ri.location))
                        addressLocations[e] = ri.addressLocations
                        macLocations[e] = ri.macLocation ?? ri.location
                        if link == nil, used[e] == nil, !endsFailed, n.kind != nil, RawDecoder.interfaceNameProblem(ri.name) == nil {
                            d.error(ri.location, "interface '\(e)' is not connected by any link",
                                    hint: "add a link such as - [ \(e), other:eth0 ], or remove the interface")
                        }
                        continue
                    }
                    // A bond: its members are ports of the node, in its place, with its MAC.
                    let mac = ri.mac ?? MACAddress.derived(from: "\(lab)/\(n.name)/\(ri.name)")
                    var members: [String] = []
                    for (k, m) in ri.members.enumerated() {
                        let e = Endpoint(node: n.name, interface: m)
                        if let first = portNamed[m] {
                            d.error(ri.memberLocations[k], "'\(e)' is already a port of '\(n.name)' (at \(first.lineColumn))",
                                    hint: "a port belongs to one bond, or is an interface of its own; use another name")
                            continue
                        }
                        portNamed[m] = ri.memberLocations[k]
                        let link = linkOf[e]
                        if link == nil, used[e] == nil, !endsFailed, n.kind != nil {
                            d.error(ri.memberLocations[k], "bond member '\(e)' is not connected by any link",
                                    hint: "a member is a link end: add a link such as - [ \(e), sw1:p1 ]")
                        }
                        interfaces.append(Interface(name: m, mac: mac, addresses: [], mtu: link?.mtu ?? TopologyLimits.defaultMTU,
                                                    peer: link?.peer(of: e), location: ri.memberLocations[k], bond: ri.name))
                        macLocations[e] = ri.macLocation ?? ri.memberLocations[k]
                        members.append(m)
                    }
                    guard !members.isEmpty else { continue }
                    let mtu = interfaces.filter { $0.bond == ri.name }.map(\.mtu).min() ?? TopologyLimits.defaultMTU
                    bonds.append(Bond(name: ri.name, mac: mac, addresses: ri.addresses, members: members, mtu: mtu, location: ri.location))
                    addressLocations[Endpoint(node: n.name, interface: ri.name)] = ri.addressLocations
                }
                if n.kind != nil, n.interfacesKnown, n.interfaces.isEmpty, !nodesNamedInLinks.contains(n.name) {
                    d.error(n.location, "\(kind.spec.article) '\(n.name)' has no interfaces",
                            hint: "declare one and link it, e.g. interfaces: { eth0: { ip: 10.0.0.1/24 } }")
                }
            } else {
                for (e, l) in portsOf[n.name] ?? [] {
                    interfaces.append(Interface(name: e.interface, mac: MACAddress.derived(from: "\(lab)/\(n.name)/\(e.interface)"),
                                                addresses: [], mtu: l.mtu, peer: l.peer(of: e), location: used[e] ?? l.location))
                }
                if interfaces.isEmpty, !endsFailed, !nodesNamedInLinks.contains(n.name) {
                    d.error(n.location, "switch '\(n.name)' has no ports", hint: "connect it with links, e.g. - [ h1:eth0, \(n.name):p1 ]")
                }
            }
            var node = Node(name: n.name, kind: kind, interfaces: interfaces, routes: n.routes.map(\.route),
                            datapath: n.datapath ?? raw.defaults.datapath, serve: n.serve, run: n.run, auto: n.auto,
                            nat: n.nat, services: n.services, vrrp: [], ecmp: n.ecmp, location: n.location,
                            runLocation: n.runLocation, sync: n.sync, capacity: resolveCapacity(n, interfaces),
                            bgp: n.bgp, bfd: n.bfd, bonds: bonds)
            node.vrrp = resolveVRRP(n, node.logicalInterfaces)
            node.fastPath = resolveFastPath(n, node)
            // BGP, BFD and health checks are kernel sockets (LabPlan), and the kernel has no bonds.
            let kernelUse: (key: String, runs: String)? = node.bgp != nil ? ("bgp", "BGP runs")
                : node.bfd != nil ? ("bfd", "BFD runs")
                : node.services.contains(where: { $0.health != nil }) ? ("health", "health checks run") : nil
            if !bonds.isEmpty, let use = kernelUse {
                d.error(bonds[0].location, "'\(n.name)' has a bond and \(use.key == "health" ? "health checks" : use.key); \(use.runs) on the node's kernel, which has no bonding module here",
                        hint: "use plain interfaces on this node, or remove \(use.key)")
            }
            resolvedNodes.append(node)
        }

        // MARK: Segments
        let isSwitch = Set(nodes.filter { $0.kind == .switch }.map(\.name))
        var uf = UnionFind<Endpoint>()
        var switchUF = UnionFind<String>()
        for l in links {
            uf.union(l.a, l.b)
            if isSwitch.contains(l.a.node), isSwitch.contains(l.b.node) {
                if switchUF.find(l.a.node) == switchUF.find(l.b.node) {
                    let path = l.a.node == l.b.node ? "'\(l.a.node)' to itself" : "'\(l.a.node)' and '\(l.b.node)', already joined through other links"
                    d.error(l.location, "this link closes a loop between switches: \(path)",
                            hint: "learning switches have no spanning tree, so a loop floods frames forever; remove one link")
                } else {
                    switchUF.union(l.a.node, l.b.node)
                }
            }
        }
        // Ports of one switch are one domain.
        var firstPort: [String: Endpoint] = [:]
        for l in links {
            for e in [l.a, l.b] where isSwitch.contains(e.node) {
                if let p = firstPort[e.node] { uf.union(p, e) } else { firstPort[e.node] = e }
            }
        }
        var segmentOfRoot: [Endpoint: Int] = [:]
        var segments: [Segment] = []
        for l in links {
            for e in [l.a, l.b] {
                let root = uf.find(e)
                if let s = segmentOfRoot[root] {
                    segments[s].endpoints.append(e)
                } else {
                    segmentOfRoot[root] = segments.count
                    segments.append(Segment(endpoints: [e], switches: []))
                }
            }
        }
        for n in nodes where isSwitch.contains(n.name) {
            if let p = firstPort[n.name], let s = segmentOfRoot[uf.find(p)] { segments[s].switches.append(n.name) }
        }
        var segmentOf: [Endpoint: Int] = [:]
        for (i, s) in segments.enumerated() { for e in s.endpoints { segmentOf[e] = i } }
        // A bond is on its members' segment: all of them on one, or a
        // failover would move it to another network.
        for n in resolvedNodes {
            for bond in n.bonds {
                let ends = bond.members.map { Endpoint(node: n.name, interface: $0) }
                guard let first = ends.first, let s = segmentOf[first] else { continue }
                segmentOf[Endpoint(node: n.name, interface: bond.name)] = s
                for e in ends.dropFirst() where segmentOf[e] != nil && segmentOf[e] != s {
                    let loc = n.interfaces.first { $0.name == e.interface }?.location ?? bond.location
                    d.error(loc, "bond member '\(e)' is on another L2 segment than '\(first)'",
                            hint: "the members of an active-backup bond are on one L2 domain: connect their switches with a link")
                }
            }
        }

        let topology = ResolvedTopology(name: raw.name ?? "", file: file, defaults: raw.defaults, nodes: resolvedNodes,
                                        links: links, checks: [], segments: segments)
        let complete = Dictionary(nodes.map { ($0.name, $0.complete) }, uniquingKeysWith: { a, _ in a })
        let allComplete = nodes.allSatisfy(\.complete) && raw.linksComplete

        // MARK: Duplicate addresses and MACs
        for seg in segments {
            var addresses: [(IPv4Address, Endpoint, SourceLocation)] = []
            var macs: [(MACAddress, Endpoint, SourceLocation)] = []
            var bondsSeen: Set<Endpoint> = []
            for e in seg.endpoints {
                guard let port = topology.interface(at: e) else { continue }
                // A bond's members share its MAC, and its addresses count once.
                let bondEnd = port.bond.map { Endpoint(node: e.node, interface: $0) }
                if let bondEnd, !bondsSeen.insert(bondEnd).inserted { continue }
                guard let i = bondEnd.flatMap(topology.interface(at:)) ?? Optional(port) else { continue }
                let key = bondEnd ?? e
                let locs = addressLocations[key] ?? []
                for (k, a) in i.addresses.enumerated() { addresses.append((a.address, key, k < locs.count ? locs[k] : i.location)) }
                macs.append((i.mac, key, macLocations[e] ?? i.location))
            }
            addresses.sort { $0.2 < $1.2 }
            var seenAddress: [IPv4Address: Endpoint] = [:]
            for (a, e, loc) in addresses {
                if let first = seenAddress[a] {
                    d.error(loc, "address \(a) is already used by '\(first)' on the same segment",
                            hint: first.node == e.node ? "an address belongs on one interface" : "give '\(e)' another address in its subnet")
                } else { seenAddress[a] = e }
            }
            macs.sort { $0.2 < $1.2 }
            var seenMAC: [MACAddress: Endpoint] = [:]
            for (m, e, loc) in macs {
                if let first = seenMAC[m] {
                    d.error(loc, "MAC \(m) of '\(e)' is already used by '\(first)' on the same segment", hint: "every interface on a segment needs its own MAC; remove 'mac' to get a derived one")
                } else { seenMAC[m] = e }
            }
        }
        // One address, one interface of a node, also across segments (the
        // same segment was reported above).
        for n in topology.nodes {
            var seen: [IPv4Address: String] = [:]
            for i in n.logicalInterfaces {
                let e = Endpoint(node: n.name, interface: i.name)
                let locs = addressLocations[e] ?? []
                for (k, a) in i.addresses.enumerated() {
                    guard let other = seen[a.address] else { seen[a.address] = i.name; continue }
                    let sameSegment = segmentOf[e] != nil && segmentOf[e] == segmentOf[Endpoint(node: n.name, interface: other)]
                    if !sameSegment {
                        d.error(k < locs.count ? locs[k] : i.location, "address \(a.address) is already on '\(n.name):\(other)'",
                                hint: "an address belongs on one interface of a node")
                    }
                }
            }
        }

        // Who answers for an address on a segment: interface addresses and VRRP VIPs.
        func owners(onSegment s: Int) -> [(IPv4Address, String)] {
            var out: [(IPv4Address, String)] = []
            for e in segments[s].endpoints {
                guard let n = topology.node(named: e.node), let port = n.interface(named: e.interface) else { continue }
                // A bond answers for its addresses once, through its first member.
                if let b = port.bond, n.bonds.first(where: { $0.name == b })?.members.first != port.name { continue }
                guard let i = port.bond.flatMap(n.interface(named:)) ?? Optional(port) else { continue }
                for a in i.addresses { out.append((a.address, "\(e)")) }
                for v in n.vrrp where v.interface == i.name {
                    for vip in v.vips { out.append((vip, "vrrp vip of \(n.name)")) }
                }
            }
            return out
        }
        func segmentComplete(_ s: Int) -> Bool {
            segments[s].endpoints.allSatisfy { complete[$0.node] ?? false }
        }

        // MARK: Routes
        for (ni, n) in nodes.enumerated() where n.kind != nil {
            let node = topology.nodes[ni]
            var seenDest: [IPv4Prefix: SourceLocation] = [:]
            for rr in n.routes {
                let route = rr.route
                if let first = seenDest[route.destination] {
                    d.error(route.location, "a route to \(route.isDefault ? "default" : route.destination.description) is already given at \(first.lineColumn)",
                            hint: "for ECMP list several next hops in one route: { to: \(route.isDefault ? "default" : route.destination.description), via: [ a, b ] }")
                    continue
                }
                seenDest[route.destination] = route.location
                // Reachability needs every address of the node.
                guard n.complete else { continue }
                for (k, hop) in route.nextHops.enumerated() {
                    let loc = rr.hopLocations[k]
                    if let own = node.logicalInterfaces.first(where: { $0.addresses.contains { $0.address == hop } }) {
                        d.error(loc, "route via \(hop): the next hop is an address of '\(n.name)' itself (\(own.name))",
                                hint: "a next hop is a neighbour's address, e.g. the gateway's")
                        continue
                    }
                    let connected = node.connectedSubnets
                    guard let via = connected.first(where: { $0.subnet.contains(hop) }) else {
                        let list = connected.isEmpty ? "'\(n.name)' has no interface addresses"
                            : "connected subnets of '\(n.name)': " + connected.map { "\($0.subnet) (\($0.interface))" }.joined(separator: ", ")
                        d.error(loc, "route via an unreachable next hop: \(hop) is not in any subnet connected to '\(n.name)'",
                                hint: "a next hop must be on a directly connected subnet; \(list)")
                        continue
                    }
                    let e = Endpoint(node: n.name, interface: via.interface)
                    guard let s = segmentOf[e], segmentComplete(s) else { continue }
                    let here = owners(onSegment: s).filter { $0.1 != "\(e)" }
                    if !here.contains(where: { $0.0 == hop }) {
                        let candidates = here.filter { via.subnet.contains($0.0) }
                        let names = candidates.map { "\($0.0) (\($0.1))" }
                        let dym = Suggest.didYouMean(hop.description, candidates.map(\.0.description))
                        let hint = candidates.isEmpty ? "no other node on that segment has an address in \(via.subnet)"
                            : [dym, "addresses there: \(Suggest.list(names, limit: 6))"].compactMap { $0 }.joined(separator: " ")
                        d.error(loc, "route via an unreachable next hop: no node on the segment of '\(e)' has address \(hop)", hint: hint)
                    }
                }
            }
        }

        // MARK: Directors: real servers, VRRP
        var addressOwners: [IPv4Address: [Endpoint]] = [:]
        for n in topology.nodes {
            for i in n.logicalInterfaces { for a in i.addresses { addressOwners[a.address, default: []].append(Endpoint(node: n.name, interface: i.name)) } }
        }
        var vrrpGroups: [String: (node: String, config: VRRPConfig)] = [:]
        for (ni, n) in nodes.enumerated() where n.kind == .director {
            let director = topology.nodes[ni]
            let directorSegments = Set(director.logicalInterfaces.compactMap { segmentOf[Endpoint(node: n.name, interface: $0.name)] })
            for service in director.services {
                for real in service.reals {
                    let owners = addressOwners[real.ip] ?? []
                    guard !owners.isEmpty else {
                        if allComplete {
                            let hosts = topology.nodes.filter { $0.kind == .host }.flatMap { h in h.addresses.map(\.address.description) }
                            d.error(real.location, "real server \(real.ip) is not an address of any node",
                                    hint: (Suggest.didYouMean(real.ip.description, hosts).map { "\($0) " } ?? "")
                                        + "give a host this address, e.g. interfaces: { eth0: { ip: \(real.ip)/24 } }")
                        }
                        continue
                    }
                    if owners.contains(where: { $0.node == n.name }) {
                        d.error(real.location, "real server \(real.ip) is the director's own address",
                                hint: "a real server is another node, usually a host with serve: { http: \(service.port) }")
                        continue
                    }
                    let sharing = owners.filter { segmentOf[$0].map(directorSegments.contains) ?? false }
                    switch service.mode {
                    case .dr:
                        guard owners.allSatisfy({ complete[$0.node] ?? false }), n.complete else { break }
                        if sharing.isEmpty {
                            d.error(real.location, "in dr mode a real server must share an L2 segment with the director: \(real.ip) ('\(owners[0])') is not on a segment of '\(n.name)'",
                                    hint: "connect '\(owners[0].node)' to a switch '\(n.name)' is on, or use mode: tun or nat")
                        } else {
                            // The director sends to the real's MAC, so it must reach it directly
                            // from an interface on that segment.
                            let onSegment = director.logicalInterfaces.filter { i in
                                segmentOf[Endpoint(node: n.name, interface: i.name)].map { s in sharing.contains { segmentOf[$0] == s } } ?? false
                            }
                            if !onSegment.contains(where: { $0.addresses.contains { $0.length < 32 && $0.contains(real.ip) } }) {
                                let have = onSegment.flatMap { i in i.addresses.map { "\(n.name):\(i.name) \($0.canonical)" } }
                                d.error(real.location, "in dr mode the director must reach real server \(real.ip) directly, but it is in none of the director's subnets on that segment",
                                        hint: have.isEmpty ? "give '\(n.name)' an address in the real server's subnet" : "the director has \(have.joined(separator: ", ")); put the real server in one of these subnets")
                            }
                        }
                    case .nat, .tun, .fullnat:
                        let connected = director.connectedSubnets.contains { $0.subnet.contains(real.ip) }
                        let routed = director.routes.contains { $0.destination.contains(real.ip) }
                        if !connected, !routed, n.complete, n.routesComplete {
                            d.error(real.location, "director '\(n.name)' has no route to real server \(real.ip)",
                                    hint: "add a route on '\(n.name)', e.g. { to: \(IPv4Prefix(address: real.ip, length: 24).canonical), via: <gateway> }")
                        }
                    }
                }
                if service.mode == .fullnat {
                    for la in service.localAddresses {
                        if let o = addressOwners[la]?.first(where: { $0.node != n.name }) {
                            d.error(service.location, "local address \(la) is already the address of '\(o)'",
                                    hint: "local addresses must belong to the director alone")
                        }
                    }
                }
            }
            if let s = director.sync, n.interfacesKnown {
                let location = n.syncInterfaceLocation ?? s.location
                if let i = director.interface(named: s.interface) {
                    if i.addresses.isEmpty {
                        d.error(location, "sync interface '\(s.interface)' of '\(n.name)' has no IPv4 address",
                                hint: "sync messages leave from the interface's address: give it one, e.g. ip: 10.0.0.2/24")
                    }
                } else {
                    let names = director.interfaces.map(\.name)
                    d.error(location, "'\(n.name)' has no interface '\(s.interface)' for sync",
                            hint: (Suggest.didYouMean(s.interface, names).map { "\($0) " } ?? "")
                                + "sync names one of the director's interfaces: \(names.joined(separator: ", "))")
                }
            }
        }
        // BGP: each neighbour on a connected subnet (single hop, as the
        // sessions and BFD are), and not one of the node's own addresses.
        for (ni, n) in nodes.enumerated() where n.complete && n.interfacesKnown {
            guard let bgp = resolvedNodes[ni].bgp else { continue }
            let node = resolvedNodes[ni]
            let own = Set(node.addresses.map(\.address))
            for neighbor in bgp.neighbors {
                if own.contains(neighbor.ip) {
                    d.error(neighbor.location, "bgp neighbor \(neighbor.ip) is an address of '\(n.name)' itself",
                            hint: "a neighbour is the other end of a link, e.g. the peer router's address on the shared subnet")
                } else if !node.connectedSubnets.contains(where: { $0.subnet.contains(neighbor.ip) }) {
                    let subnets = node.connectedSubnets.map { "\($0.subnet) (\($0.interface))" }.joined(separator: ", ")
                    d.error(neighbor.location, "bgp neighbor \(neighbor.ip) of '\(n.name)' is not on a connected subnet",
                            hint: "sessions are single hop: the neighbour must be on one of \(subnets.isEmpty ? "its subnets (it has none)" : subnets)")
                }
            }
        }
        // Static routes with BFD: a router's, with the node's timers (a node
        // with `bfd:` and no `bgp:` only answers its neighbours' sessions).
        for (ni, n) in nodes.enumerated() where n.kind != nil {
            for rr in n.routes where rr.route.bfd {
                let at = rr.bfdLocation ?? rr.route.location
                if resolvedNodes[ni].kind != .router {
                    d.error(at, "bfd on a route of '\(n.name)': only a router's static routes run BFD",
                            hint: "remove bfd: true (a \(resolvedNodes[ni].kind.rawValue)'s routes have no next-hop failover)")
                } else if resolvedNodes[ni].bfd == nil {
                    d.error(at, "route with bfd: true, but '\(n.name)' has no bfd timers",
                            hint: "add bfd: { interval: 50ms, multiplier: 3 } to '\(n.name)'")
                }
            }
        }
        // A NAT service on the directors of a VRRP pair: its reals route
        // replies through one next hop, which must follow the master — an
        // inside VIP (Node.natGateway(for:)); a director's own address
        // would send every reply to that one director, dead or backup.
        if allComplete {
            var natDirectors: [String: [Int]] = [:]
            var natOrder: [String] = []
            for (ni, n) in nodes.enumerated() where n.kind == .director {
                for service in topology.nodes[ni].services where service.mode == .nat {
                    let key = "\(service.vip):\(service.port)/\(service.proto.rawValue)"
                    if natDirectors[key] == nil { natOrder.append(key) }
                    natDirectors[key, default: []].append(ni)
                }
            }
            for key in natOrder {
                guard let all = natDirectors[key], all.count > 1 else { continue }
                // The directors of it that form a VRRP pair: a group (same id, same segment) with another of them.
                var groupMembers: [String: Set<Int>] = [:]
                for ni in all {
                    for v in topology.nodes[ni].vrrp where !v.interface.isEmpty {
                        guard let seg = segmentOf[Endpoint(node: topology.nodes[ni].name, interface: v.interface)] else { continue }
                        groupMembers["\(seg)/\(v.group)", default: []].insert(ni)
                    }
                }
                let paired = groupMembers.values.filter { $0.count > 1 }.reduce(into: Set<Int>()) { $0.formUnion($1) }
                let list = all.filter(paired.contains)
                guard list.count > 1 else { continue }
                let directors = list.map { topology.nodes[$0] }
                guard let service = directors[1].services.first(where: { "\($0.vip):\($0.port)/\($0.proto.rawValue)" == key }) else { continue }
                var stranded: [(real: IPv4Address, subnet: IPv4Prefix, gateway: IPv4Address?)] = []
                for real in service.reals {
                    guard let host = topology.nodes.first(where: { $0.kind == .host && $0.addresses.contains { $0.address == real.ip } }),
                          host.auto else { continue }
                    if directors.contains(where: { $0.insideVIP(for: host) != nil }) { continue }
                    let subnet = host.addresses.first { $0.address == real.ip }!.canonical
                    stranded.append((real.ip, subnet, directors.lazy.compactMap { $0.natGateway(for: host) }.first))
                }
                guard let first = stranded.first else { continue }
                let names = directors.map { "'\($0.name)'" }.joined(separator: ", ")
                let via = first.gateway.map { g in " through \(g)" + (directors.first { $0.addresses.contains { $0.address == g } }.map { " ('\($0.name)' alone)" } ?? "") } ?? ""
                d.error(service.location, "nat service \(key) is on directors \(names), but its real servers (\(stranded.map(\.real.description).joined(separator: ", "))) would route every reply\(via), so replies stop when that director fails or is backup",
                        hint: "give the pair an inside VIP, an unused address of \(first.subnet) in a vrrp group of both, e.g. \(Self.insideVIPExample(first.subnet, directors: directors, used: addressOwners)) (as keepalived LVS-NAT pairs do): the reals then route through whichever director is master")
            }
        }
        // VRRP groups sharing a segment: one group id, one set of VIPs, distinct priorities.
        for (ni, n) in nodes.enumerated() where n.kind == .director || n.kind == .router {
            for v in topology.nodes[ni].vrrp where !v.interface.isEmpty {
                guard let s = segmentOf[Endpoint(node: n.name, interface: v.interface)] else { continue }
                let key = "\(s)/\(v.group)"
                guard let first = vrrpGroups[key] else { vrrpGroups[key] = (n.name, v); continue }
                if Set(first.config.vips) != Set(v.vips) {
                    d.error(v.location, "vrrp group \(v.group) has different vips on '\(first.node)' and '\(n.name)'",
                            hint: "routers of one group share the same vips: \(first.config.vips.map(\.description).joined(separator: ", "))")
                } else if first.config.priority == v.priority {
                    d.error(v.location, "vrrp group \(v.group): '\(n.name)' has the same priority \(v.priority) as '\(first.node)'",
                            hint: "give the backup a lower priority, e.g. \(max(1, v.priority - 10))")
                }
            }
        }

        // MARK: Checks
        var checks: [Check] = []
        var drills: [Drill] = []
        if raw.checks != nil || raw.drills != nil {
            var ifaces: [Endpoint: MACAddress] = [:]
            var names: [String: [String]] = [:]
            for n in topology.nodes {
                names[n.name] = n.interfaces.map(\.name) + n.bonds.map(\.name)
                for i in n.interfaces { ifaces[Endpoint(node: n.name, interface: i.name)] = i.mac }
                for b in n.bonds { ifaces[Endpoint(node: n.name, interface: b.name)] = b.mac }   // src-mac: r1:bond0
            }
            var ctx = CheckContext(nodes: Dictionary(nodes.map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a }),
                                   nodeOrder: nodeNames, interfaces: ifaces, interfaceNames: names,
                                   incompleteNodes: Set(nodes.filter { !$0.interfacesKnown || !$0.complete || ($0.kind == .switch && endsFailed) }.map(\.name)),
                                   addressedNodes: Set(topology.nodes.filter { !$0.addresses.isEmpty }.map(\.name)))
            ctx.bondMembers = Dictionary(topology.nodes.flatMap { n in n.bonds.map { (Endpoint(node: n.name, interface: $0.name), $0.members) } },
                                         uniquingKeysWith: { a, _ in a })
            let decoder = CheckDecoder(r: r, ctx: ctx)
            if let cn = raw.checks { checks = decoder.decode(cn) }
            if let dn = raw.drills {
                var links: [Endpoint: Int] = [:]
                for (i, link) in topology.links.enumerated() { links[link.a] = i; links[link.b] = i }
                drills = DrillDecoder(r: r, checks: decoder, links: links).decode(dn)
            }
        }

        var result = topology
        result.checks = checks
        result.drills = drills
        return result
    }

    /// A port name not yet used on switch `node`.
    func freshPort(for node: String) -> String {
        let usedNames = Set(raw.links.flatMap(\.ends).map(\.endpoint).filter { $0.node == node }.map(\.interface))
        var k = 1
        while usedNames.contains("p\(k)") { k += 1 }
        return "p\(k)"
    }
}

/// Disjoint sets over hashable values (path compression).
struct UnionFind<T: Hashable> {
    private var parent: [T: T] = [:]

    mutating func find(_ x: T) -> T {
        var root = x
        while let p = parent[root], p != root { root = p }
        var y = x
        while let p = parent[y], p != root { parent[y] = root; y = p }
        return root
    }

    mutating func union(_ a: T, _ b: T) {
        let ra = find(a), rb = find(b)
        if ra != rb { parent[ra] = rb }
    }
}

extension TopologyResolver {
    /// Each VRRP group's interface: the one written (which must hold the
    /// VIPs in a connected subnet), else the one whose connected subnets
    /// hold them; and priority 255 exactly when the node owns the VIPs.
    /// `capacity.nics` names the node's own interfaces (a switch's ports).
    func resolveCapacity(_ n: RawNode, _ interfaces: [Interface]) -> NodeCapacity {
        var c = n.capacity
        let names = interfaces.map(\.name)
        guard n.interfacesKnown else { return c }
        for (g, ports) in c.nics.enumerated() {
            for (i, port) in ports.enumerated() where !names.contains(port) {
                let list = names.isEmpty ? "'\(n.name)' has no interfaces" : "'\(n.name)' has: \(Suggest.list(names))"
                d.error(n.nicLocations[g][i], "NIC port '\(port)' is not an interface of '\(n.name)'",
                        hint: Suggest.didYouMean(port, names).map { "\($0) \(list)" } ?? list)
            }
            c.nics[g] = ports.filter(names.contains)
        }
        c.nics.removeAll(where: \.isEmpty)
        return c
    }

    func resolveVRRP(_ n: RawNode, _ interfaces: [Interface]) -> [VRRPConfig] {
        guard n.complete else { return n.vrrp }
        let subnets = interfaces.flatMap { i in i.addresses.filter { $0.length < 32 }.map { (i.name, $0.canonical) } }
        let list = subnets.map { "\($0.1) (\($0.0))" }.joined(separator: ", ")
        return n.vrrp.enumerated().map { k, v in
            var v = v
            let locations = k < n.vrrpVIPLocations.count ? n.vrrpVIPLocations[k] : []
            func at(_ j: Int) -> SourceLocation { j < locations.count ? locations[j] : v.location }
            if !v.interface.isEmpty {
                guard let i = interfaces.first(where: { $0.name == v.interface }) else {
                    d.error(v.interfaceLocation ?? v.location, "vrrp group \(v.group): '\(n.name)' has no interface '\(v.interface)'",
                            hint: Suggest.hint(v.interface, interfaces.map(\.name), listName: "its interfaces"))
                    v.interface = ""
                    return v
                }
                for (j, vip) in v.vips.enumerated() where !i.addresses.contains(where: { $0.length < 32 && $0.contains(vip) }) {
                    d.error(at(j), "vrrp vip \(vip) is not in a subnet of '\(n.name):\(i.name)'",
                            hint: "VRRP VIPs live on the group's interface's subnet: \(i.addresses.map { $0.canonical.description }.joined(separator: ", "))")
                    v.interface = ""
                }
            } else {
                var chosen: Set<String> = []
                for (j, vip) in v.vips.enumerated() {
                    let holders = Set(subnets.filter { $0.1.contains(vip) }.map(\.0))
                    if holders.isEmpty {
                        d.error(at(j), "vrrp vip \(vip) is not in a subnet connected to '\(n.name)'",
                                hint: list.isEmpty ? "'\(n.name)' has no interface addresses" : "VRRP VIPs live on a connected subnet: \(list)")
                    } else if holders.count > 1 {
                        d.error(at(j), "vrrp vip \(vip) is in subnets of several interfaces of '\(n.name)': \(holders.sorted().joined(separator: ", "))",
                                hint: "say which one, e.g. interface: \(holders.sorted()[0])")
                    }
                    chosen.formUnion(holders)
                }
                if chosen.count == 1 { v.interface = chosen.first! } else if chosen.count > 1, v.vips.count > 1,
                   !v.vips.contains(where: { vip in subnets.filter { $0.1.contains(vip) }.count > 1 }) {
                    d.error(v.location, "the vips of vrrp group \(v.group) are on different interfaces of '\(n.name)': \(chosen.sorted().joined(separator: ", "))",
                            hint: "one group lives on one interface; split the VIPs into two groups")
                }
            }
            let own = Set(interfaces.flatMap { $0.addresses.map(\.address) })
            let owned = v.vips.filter(own.contains)
            if v.priority == 255 && owned.count != v.vips.count {
                d.error(v.location, "vrrp group \(v.group): priority 255 is for the owner of the addresses, but '\(n.name)' does not have \(v.vips.filter { !own.contains($0) }.map(\.description).joined(separator: ", "))",
                        hint: "use a priority of 1...254, or give '\(n.name)' the VIPs as interface addresses")
            } else if v.priority != 255 && !owned.isEmpty {
                d.error(v.location, "vrrp group \(v.group): '\(n.name)' owns \(owned.map(\.description).joined(separator: ", ")) (an interface address), so its priority must be 255",
                        hint: "priority: 255, or use VIPs that are not interface addresses")
            }
            return v
        }
    }
    /// `{ group: N, vips: [ A ] }` for the NAT pair error: a group none of
    /// `directors` uses, the first address of `subnet` no node has.
    static func insideVIPExample(_ subnet: IPv4Prefix, directors: [Node], used: [IPv4Address: [Endpoint]]) -> String {
        let groups = Set(directors.flatMap { $0.vrrp.map(\.group) })
        let group = (1...255).first { !groups.contains($0) } ?? 1
        let taken = Set(used.keys).union(directors.flatMap { $0.vrrp.flatMap(\.vips) })
        let base = subnet.canonical.address.rawValue
        let size = subnet.length >= 31 ? 1 : (1 << (32 - subnet.length)) - 2
        let free = (1...max(1, min(size, 4096))).lazy.map { IPv4Address(rawValue: base &+ UInt32($0)) }.first { !taken.contains($0) }
        return "{ group: \(group), vips: [ \(free.map(\.description) ?? "<address>") ] }"
    }
}

extension TopologyResolver {
    /// The fast path is in the lab's XDP program, which only AF_XDP ports
    /// have, and keys flows by the port a frame came in on, which a bond's
    /// failover changes. Asked for on such a node: an error; asked for by
    /// the lab's default: the node goes without.
    func resolveFastPath(_ n: RawNode, _ node: Node) -> Bool {
        let wanted = n.fastPath ?? raw.defaults.fastPath
        guard wanted, node.isUserspace else { return false }
        let problem = node.datapath != .afxdp ? "it uses datapath \(node.datapath.rawValue); the fast path is in the XDP program of AF_XDP ports"
            : !node.bonds.isEmpty ? "it has a bond; the fast path keys flows by the port they come in on, which a failover changes"
            : nil
        guard let problem else { return true }
        if n.fastPath == true, let location = n.fastPathLocation {
            d.error(location, "'\(n.name)' cannot have the fast path: \(problem)",
                    hint: node.bonds.isEmpty ? "use datapath: afxdp on this node, or remove fastpath" : "remove fastpath from this node")
        }
        return false
    }
}
