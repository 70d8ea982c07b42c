import Topology
import Wire

/// Everything `up` will create for a topology, computed without touching
/// the system: namespaces, veth pairs, addresses, routes, sysctls and
/// processes. `LabDeployer` applies it through rtnetlink; `IPScript` renders
/// the same plan as `ip` commands (the baseline of the deploy benchmark).
public struct LabPlan: Sendable {
    public struct Namespace: Sendable, Hashable {
        public var node: String
        public var name: String
    }

    public struct VethEnd: Sendable, Hashable {
        public var namespace: String
        public var interface: String
        public var mac: MACAddress
    }

    public struct Veth: Sendable, Hashable {
        public var a: VethEnd
        public var b: VethEnd
        public var mtu: Int
        /// "gw:eth1 ↔ sw:p1", for messages.
        public var label: String
    }

    public struct Address: Sendable, Hashable {
        public var namespace: String
        public var interface: String
        public var prefix: IPv4Prefix
    }

    public struct Route: Sendable, Hashable {
        public var namespace: String
        public var destination: IPv4Prefix
        public var via: [IPv4Address]
    }

    public struct Sysctl: Sendable, Hashable {
        public var namespace: String
        /// Relative to /proc/sys, e.g. "net/ipv4/conf/all/arp_ignore".
        public var key: String
        public var value: String

        /// A key of one interface (`net/ipv4/conf/eth0/...`), which exists
        /// only once that interface does.
        public var isPerInterface: Bool {
            let parts = key.split(separator: "/")
            return parts.count >= 4 && parts[2] == "conf" && parts[3] != "all" && parts[3] != "default"
        }
    }

    public struct Interface: Sendable, Hashable {
        public var namespace: String
        public var interface: String
    }

    public struct ProcessSpec: Sendable, Hashable {
        public var namespace: String
        public var node: String
        /// "serve", "run#1", …
        public var role: String
        public var arguments: [String]
    }

    /// IPIP decapsulation on a TUN real server: `wirelab_decap` at tc
    /// ingress of its interfaces (attached and owned by the lab's daemon).
    public struct Decapsulation: Sendable, Hashable {
        public var namespace: String
        public var node: String
        public var interfaces: [String]
        /// Outer destinations accepted: the host's own interface addresses.
        public var hostAddresses: [IPv4Address]
        /// Inner destinations accepted: the VIPs of its TUN services.
        public var vips: [IPv4Address]
        /// Outer sources accepted: the interface addresses of the directors
        /// of those services (IPIP from anyone else is left to the kernel,
        /// which drops it).
        public var tunnelSources: [IPv4Address]
    }

    /// A permanent neighbour entry (`ip neigh replace … nud permanent`).
    public struct Neighbour: Sendable, Hashable {
        public var namespace: String
        public var interface: String
        public var address: IPv4Address
        public var mac: MACAddress
    }

    public var lab: String
    public var namespaces: [Namespace] = []
    public var veths: [Veth] = []
    public var addresses: [Address] = []
    public var routes: [Route] = []
    public var sysctls: [Sysctl] = []
    /// Interfaces whose TX checksum offload goes off: frames a kernel sends
    /// with a partial checksum reach AF_XDP and captures unfinished.
    public var checksumOffloadOff: [Interface] = []
    public var processes: [ProcessSpec] = []
    /// What automatic configuration did, printed by `up`.
    public var notes: [String] = []
    /// Namespaces of nodes whose frames the Swift data plane forwards.
    public var userspaceNamespaces: [String] = []
    public var decapsulations: [Decapsulation] = []
    public var neighbours: [Neighbour] = []

    /// Builds the plan. `serveCommand` is the argv prefix that runs the
    /// built-in server (the wirelab binary and `serve`).
    public init(topology: ResolvedTopology, serveCommand: [String]) {
        lab = topology.name
        func ns(_ node: String) -> String { LabStore.namespaceName(lab: topology.name, node: node) }

        for node in topology.nodes {
            namespaces.append(Namespace(node: node.name, name: ns(node.name)))
            // Lab namespaces speak IPv4 only: IPv6 autoconfiguration would
            // put router solicitations and MLD reports into every capture.
            sysctls.append(Sysctl(namespace: ns(node.name), key: "net/ipv6/conf/all/disable_ipv6", value: "1"))
            sysctls.append(Sysctl(namespace: ns(node.name), key: "net/ipv6/conf/default/disable_ipv6", value: "1"))
        }

        // Userspace nodes (switch, router, director): the Swift data plane
        // owns their interfaces and addresses; their kernel must not forward
        // or answer for them, so it gets no addresses and forwarding stays off.
        for node in topology.nodes where node.kind != .host {
            userspaceNamespaces.append(ns(node.name))
            sysctls.append(Sysctl(namespace: ns(node.name), key: "net/ipv4/ip_forward", value: "0"))
        }

        // Health checks are kernel TCP sockets in the director's namespace,
        // from its interface addresses, so that kernel gets those addresses
        // and the node's routes. Its data plane passes TCP to them up to the
        // kernel (an XDP pass rule, NodeRuntime); everything else, ARP
        // included, stays with the Director element (it needs the ARP replies
        // for its own neighbour table). The kernel therefore cannot resolve
        // neighbours itself: it gets permanent entries for every address on
        // the director's subnets, from the topology's deterministic MACs.
        // (Passing ARP replies for the address to the kernel instead would
        // take them from the element, which resolves the reals with them:
        // pass rules are all or nothing per frame.)
        // BGP and BFD (`bgp:`, routers and directors) are kernel sockets
        // too, in the same way: the kernel gets the node's interface
        // addresses and permanent neighbours; the data plane passes TCP and
        // UDP 3784 to them up (NodeRuntime.controlPlanePassRules).
        for node in topology.nodes where node.kind.isUserspace && Self.kernelOwnsAddresses(node) {
            let name = ns(node.name)
            var count = 0
            for iface in node.interfaces {
                for prefix in iface.addresses {
                    addresses.append(Address(namespace: name, interface: iface.name, prefix: prefix))
                    for other in topology.nodes where other.name != node.name {
                        for otherIface in other.interfaces {
                            for a in otherIface.addresses where prefix.contains(a.address) && a.length == prefix.length {
                                neighbours.append(Neighbour(namespace: name, interface: iface.name, address: a.address,
                                                            mac: otherIface.mac))
                                count += 1
                            }
                        }
                    }
                }
            }
            let healthChecks = node.kind == .director && node.services.contains(where: { $0.health != nil })
            if healthChecks {
                for route in node.routes {
                    routes.append(Route(namespace: name, destination: route.destination, via: route.nextHops))
                }
            }
            let list = node.interfaces.flatMap { i in i.addresses.map { "\($0) on \(i.name)" } }.joined(separator: ", ")
            let purpose = [healthChecks ? "health checks" : nil, node.bgp != nil ? "BGP and BFD" : node.bfd != nil ? "BFD" : nil].compactMap { $0 }.joined(separator: " and ")
            let passed = node.bgp != nil ? "TCP and UDP 3784" : node.bfd != nil ? (healthChecks ? "TCP and UDP 3784" : "UDP 3784") : "TCP"
            notes.append("\(node.name): kernel address \(list) and \(count) permanent neighbours, for \(purpose) (the data plane passes \(passed) to it to the kernel)")
        }

        for link in topology.links {
            guard let nodeA = topology.node(named: link.a.node), let nodeB = topology.node(named: link.b.node) else { continue }
            let ifA = nodeA.interfaces.first { $0.name == link.a.interface }
            let ifB = nodeB.interfaces.first { $0.name == link.b.interface }
            veths.append(Veth(
                a: VethEnd(namespace: ns(nodeA.name), interface: link.a.interface,
                           mac: ifA?.mac ?? MACAddress.derived(from: "\(topology.name)/\(nodeA.name)/\(link.a.interface)")),
                b: VethEnd(namespace: ns(nodeB.name), interface: link.b.interface,
                           mac: ifB?.mac ?? MACAddress.derived(from: "\(topology.name)/\(nodeB.name)/\(link.b.interface)")),
                mtu: link.mtu,
                label: "\(link.a.node):\(link.a.interface) ↔ \(link.b.node):\(link.b.interface)"))
            for (node, end) in [(nodeA, link.a), (nodeB, link.b)] {
                checksumOffloadOff.append(Interface(namespace: ns(node.name), interface: end.interface))
            }
        }

        // Real servers of DR and TUN services carry the VIP on lo and must
        // not answer ARP for it; real servers of NAT services send replies
        // back through the director (decided in `RealServerRole`, shared
        // with the simulator).
        let realRoles = RealServerRole.roles(in: topology)

        for node in topology.nodes where node.kind == .host {
            let name = ns(node.name)
            for iface in node.interfaces {
                for prefix in iface.addresses {
                    addresses.append(Address(namespace: name, interface: iface.name, prefix: prefix))
                }
            }
            if Self.ignoresRoutesWithLinkdown(node) {
                sysctls.append(Sysctl(namespace: name, key: "net/ipv4/conf/all/ignore_routes_with_linkdown", value: "1"))
                notes.append("\(node.name): ignore_routes_with_linkdown=1 (its ECMP route leaves out a next hop whose link lost carrier)")
            }
            let role = realRoles[node.name] ?? RealServerRole()
            let natGateway = role.natGateway
            let vips = role.vips
            for vip in vips {
                addresses.append(Address(namespace: name, interface: "lo", prefix: IPv4Prefix(address: vip, length: 32)))
                notes.append("\(node.name): VIP \(vip)/32 on lo (real server of a DR/TUN service)")
            }
            if !vips.isEmpty {
                for key in ["all", "default"] + node.interfaces.map(\.name) {
                    sysctls.append(Sysctl(namespace: name, key: "net/ipv4/conf/\(key)/arp_ignore", value: "1"))
                    sysctls.append(Sysctl(namespace: name, key: "net/ipv4/conf/\(key)/arp_announce", value: "2"))
                }
                notes.append("\(node.name): arp_ignore=1 arp_announce=2 (does not answer ARP for its VIPs)")
            }
            let tunVIPs = role.tunVIPs
            if !tunVIPs.isEmpty {
                // No `ipip` module here: the lab's own tc program strips
                // the outer header (LabDaemon attaches it). rp_filter is
                // 0 in a fresh namespace, and the inner packet enters the
                // stack as if it had arrived on the interface, so its
                // source passes even strict reverse-path filtering when
                // the route back leaves by the same interface.
                let hostAddresses = node.interfaces.flatMap(\.addresses).map(\.address)
                decapsulations.append(Decapsulation(namespace: name, node: node.name, interfaces: node.interfaces.map(\.name),
                                                    hostAddresses: hostAddresses, vips: tunVIPs,
                                                    tunnelSources: role.tunnelSources))
                notes.append("\(node.name): IPIP decapsulation (tc ingress BPF on \(node.interfaces.map(\.name).joined(separator: ", "))) for VIP \(tunVIPs.map(\.description).joined(separator: ", ")) (real server of a TUN service)")
            }
            if let gateway = natGateway {
                notes.append("\(node.name): default route via director \(gateway) (real server of a NAT service)")
            }
            for route in role.routes(of: node) {
                routes.append(Route(namespace: name, destination: route.destination, via: route.via))
            }
            if let serve = node.serve {
                var argv = serveCommand
                if let http = serve.http { argv += ["--http", String(http)] }
                if let udp = serve.udpEcho { argv += ["--udp-echo", String(udp)] }
                argv += ["--name", node.name]
                processes.append(ProcessSpec(namespace: name, node: node.name, role: "serve", arguments: argv))
            }
            for (i, command) in node.run.enumerated() {
                processes.append(ProcessSpec(namespace: name, node: node.name, role: "run#\(i + 1)",
                                             arguments: ["/bin/sh", "-c", command]))
            }
        }
    }
}

extension LabPlan {
    /// Whether a host's kernel gets `ignore_routes_with_linkdown=1`: one
    /// with an ECMP route, so that a next hop whose link lost carrier (its
    /// router died) leaves the group at once, as a router's would — Linux
    /// keeps using it by default. The simulator's host model does the same.
    public static func ignoresRoutesWithLinkdown(_ node: Node) -> Bool {
        node.kind == .host && node.routes.contains(where: \.isMultipath)
    }

    /// Whether the node's kernel gets its interface addresses: a director
    /// with health checks, or any node with BGP (its sessions and BFD are
    /// kernel sockets in its namespace).
    static func kernelOwnsAddresses(_ node: Node) -> Bool {
        node.runsControlPlane || (node.kind == .director && node.services.contains(where: { $0.health != nil }))
    }
}
