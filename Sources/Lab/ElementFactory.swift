import Datapath
import Topology
import Wire

// Topology → element configuration: the one mapping, pure (no I/O), used by
// the live daemon (`NodeRuntime`) and the simulator (`Simulator`), so the
// two run the same elements configured the same way.

/// Builds each node's element from its topology description.
public enum ElementFactory {
    /// Builds the element for a node from its topology description.
    public static func makeForwarder(for node: Node) throws -> NodeForwarder {
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

    /// The node's bonds as port numbers (`BondMap`): element port i is
    /// `node.logicalInterfaces[i]`, physical port j `node.interfaces[j]`.
    /// nil for a node without bonds (its ports are the element's).
    public static func bondMap(for node: Node) -> BondMap? {
        guard !node.bonds.isEmpty else { return nil }
        let physical = Dictionary(node.interfaces.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        return BondMap(members: node.logicalInterfaces.map { logical in
            node.bonds.first { $0.name == logical.name }?.members.compactMap { physical[$0] } ?? [physical[logical.name] ?? 0]
        })
    }

    /// The ECMP hash of a router (the file's `ecmp:` fields and seed) or a
    /// director (which takes no `ecmp:`: the default, the 5-tuple, seed 0).
    static func flowHasher(_ node: Node) -> FlowHasher {
        FlowHasher(fields: ECMPHashFields(node.ecmp.fields), seed: node.ecmp.seed)
    }

    /// The router element's configuration, field for field from the file.
    public static func routerConfiguration(_ node: Node) -> Router.Configuration {
        let ecmp = flowHasher(node)
        var c = Router.Configuration(
            interfaces: node.logicalInterfaces.map(PortConfiguration.init),
            routes: node.routes.map { .init(destination: $0.destination, gateways: $0.nextHops) },
            ecmpFields: ecmp.fields, ecmpSeed: ecmp.seed,
            nat: node.nat.map { .init(public: $0.publicAddress, private: $0.privateAddress) })
        c.vrrp = vrrpConfiguration(node)
        c.kernelOwnsTransport = node.runsControlPlane
        return c
    }

    /// The node's VRRP groups, each on the port of its (resolved) interface.
    public static func vrrpConfiguration(_ node: Node) -> [VRRPConfiguration] {
        node.vrrp.compactMap { v in
            guard let port = node.logicalInterfaces.firstIndex(where: { $0.name == v.interface }) else { return nil }
            return VRRPConfiguration(vrid: UInt8(v.group), priority: UInt8(v.priority), vips: v.vips,
                                     interval: UInt16(v.interval.milliseconds / 10), preempt: v.preempt,
                                     preemptDelay: UInt64(v.preemptDelay.milliseconds) * 1_000_000, vmac: v.vmac,
                                     port: PortID(port))
        }
    }

    /// The director element's configuration: interfaces, routes (a route
    /// with several next hops becomes one route per next hop, an ECMP group
    /// the director hashes over like a router), services.
    public static func directorConfiguration(_ node: Node) -> Director.Configuration {
        let services = node.services.map { service -> Director.Service in
            var persistence: Persistence?
            if let p = service.persistence {
                let mask = service.persistenceMask.map { UInt32($0.rawValue).nonzeroBitCount } ?? 32
                persistence = Persistence(timeout: p.seconds, netmaskLength: mask)
            }
            let virtual = VirtualService(
                address: service.vip, port: UInt16(service.port), proto: service.proto,
                scheduler: service.scheduler, schedulerFlags: SchedulerFlags(service.flags), mode: service.mode,
                persistence: persistence, localAddresses: service.localAddresses, sloppy: service.sloppy)
            return Director.Service(virtual, reals: service.reals.map {
                RealServer(address: $0.ip, port: UInt16($0.port), weight: $0.weight)
            })
        }
        // `sync.interface` names one of the node's interfaces (the resolver checked).
        let sync = node.sync.flatMap { s in
            node.logicalInterfaces.firstIndex { $0.name == s.interface }.map {
                SyncConfiguration(syncID: UInt8(clamping: s.group), port: PortID($0))
            }
        }
        var c = Director.Configuration(
            interfaces: node.logicalInterfaces.map(PortConfiguration.init),
            routes: node.routes.flatMap { r in r.nextHops.map { Director.Route(r.destination, via: $0) } },
            services: services, ecmp: flowHasher(node), sync: sync)
        c.vrrp = vrrpConfiguration(node)
        return c
    }

    /// The host model standing in for a host's kernel in the simulator:
    /// its interfaces, its routes as the lab installs them, and what being a
    /// real server adds (`RealServerRole`: VIPs on `lo`, `arp_ignore`,
    /// IPIP decapsulation, the default route of a NAT real server). An ECMP
    /// route keeps its next hops; the model uses the first live one, and
    /// drops those whose link lost carrier, as the lab's kernel does there
    /// (`LabPlan`: `ignore_routes_with_linkdown` on a host with an ECMP route).
    public static func hostConfiguration(_ node: Node, role: RealServerRole?) -> HostModel.Configuration {
        let role = role ?? RealServerRole()
        var configuration = HostModel.Configuration(
            name: node.name,
            interfaces: node.interfaces.map(PortConfiguration.init),
            routes: role.routes(of: node).flatMap { r in r.via.map { HostModel.Route(r.destination, via: $0) } },
            localAddresses: role.vips,
            arpIgnore: !role.vips.isEmpty,
            decapsulatesIPIP: role.decapsulatesIPIP,
            httpPort: node.serve?.http.map { UInt16(clamping: $0) },
            udpEchoPort: node.serve?.udpEcho.map { UInt16(clamping: $0) })
        configuration.ignoresRoutesWithLinkdown = LabPlan.ignoresRoutesWithLinkdown(node)
        return configuration
    }
}

extension PortConfiguration {
    /// The port an element gets for one of its node's interfaces.
    init(_ interface: Interface) {
        self.init(name: interface.name, mac: interface.mac, addresses: interface.addresses, mtu: interface.mtu)
    }
}
