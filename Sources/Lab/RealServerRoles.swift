import Topology
import Wire

/// What a host does because it is a real server of a director's service
/// (DESIGN.md "Rules"): the one place that decides it, for the live lab
/// (`LabPlan`: VIP on `lo`, ARP sysctls, default route) and the simulator
/// (`HostModel` configuration), so the two cannot drift.
public struct RealServerRole: Sendable, Hashable {
    /// VIPs of DR and TUN services this host serves: local addresses it
    /// does not answer ARP for (`lo` + `arp_ignore=1`/`arp_announce=2`).
    public var vips: [IPv4Address] = []
    /// It serves a TUN service: IPIP to it is decapsulated.
    public var decapsulatesIPIP = false
    /// The VIPs of the TUN services it serves (what the live decapsulation
    /// program accepts as inner destinations).
    public var tunVIPs: [IPv4Address] = []
    /// The interface addresses of the directors of those TUN services: the
    /// only outer sources the live decapsulation accepts.
    public var tunnelSources: [IPv4Address] = []
    /// It serves a NAT service: replies go back through this address, the
    /// director's inside VRRP VIP when it has one (`Node.natGateway(for:)`).
    public var natGateway: IPv4Address?

    /// The roles of every host that is a real server and has `auto` on, by
    /// host name. Hosts with `auto: false` get none.
    public static func roles(in topology: ResolvedTopology) -> [String: RealServerRole] {
        var services: [String: [(Service, Node)]] = [:]   // host name → services
        for director in topology.nodes where director.kind == .director {
            for service in director.services {
                for real in service.reals {
                    for host in topology.nodes where host.kind == .host
                        && host.interfaces.contains(where: { $0.addresses.contains { $0.address == real.ip } }) {
                        services[host.name, default: []].append((service, director))
                    }
                }
            }
        }
        var roles: [String: RealServerRole] = [:]
        for node in topology.nodes where node.kind == .host && node.auto {
            guard let list = services[node.name] else { continue }
            var role = RealServerRole()
            for (service, director) in list {
                switch service.mode {
                case .dr, .tun:
                    if !role.vips.contains(service.vip) { role.vips.append(service.vip) }
                    if service.mode == .tun {
                        role.decapsulatesIPIP = true
                        if !role.tunVIPs.contains(service.vip) { role.tunVIPs.append(service.vip) }
                        for a in director.interfaces.flatMap(\.addresses).map(\.address) where !role.tunnelSources.contains(a) {
                            role.tunnelSources.append(a)
                        }
                    }
                case .nat:
                    // The director's inside VRRP VIP on this host's subnet
                    // (so replies follow the master), else its address there.
                    role.natGateway = director.natGateway(for: node)
                case .fullnat:
                    break
                }
            }
            roles[node.name] = role
        }
        return roles
    }

    /// The host's routes as the lab installs them: its own, except that a
    /// NAT real server's default route goes through the director.
    public func routes(of node: Node) -> [(destination: IPv4Prefix, via: [IPv4Address])] {
        var out: [(destination: IPv4Prefix, via: [IPv4Address])] = []
        for route in node.routes {
            if natGateway != nil, route.destination.length == 0 { continue }
            out.append((route.destination, route.nextHops))
        }
        if let gateway = natGateway {
            out.append((IPv4Prefix(address: .any, length: 0), [gateway]))
        }
        return out
    }
}
