// The resolved, typed model of a topology file (format v1, see DESIGN.md).
//
// Everything here is a plain value: the loader builds it once, the lab
// deployer, the simulator and the checks read it. Every element that came
// from the file keeps the `SourceLocation` of the YAML node it came from, so
// later stages (deploy, checks) can point back into the file too.
import Wire

/// A resolved topology: nodes with their interfaces, links, L2 segments and
/// checks, with every default applied and every cross-reference checked.
public struct ResolvedTopology: Sendable {
    /// The lab name (`name:`); namespaces are `wl-<name>-<node>`.
    public var name: String
    /// The file name as given to the loader (used in every `SourceLocation`).
    public var file: String
    public var defaults: Defaults
    /// Nodes in file order.
    public var nodes: [Node]
    /// Links in file order.
    public var links: [Link]
    /// Checks in file order.
    public var checks: [Check]
    /// Drills in file order (`drills:`).
    public var drills: [Drill] = []
    /// L2 broadcast domains, ordered by their first link in the file.
    public var segments: [Segment]

    private var nodeIndex: [String: Int]
    private var linkIndex: [Endpoint: Int]
    private var segmentIndex: [Endpoint: Int]

    init(name: String, file: String, defaults: Defaults, nodes: [Node], links: [Link],
         checks: [Check], segments: [Segment]) {
        self.name = name
        self.file = file
        self.defaults = defaults
        self.nodes = nodes
        self.links = links
        self.checks = checks
        self.segments = segments
        nodeIndex = Dictionary(nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        var li: [Endpoint: Int] = [:]
        for (i, link) in links.enumerated() {
            li[link.a] = li[link.a] ?? i
            li[link.b] = li[link.b] ?? i
        }
        linkIndex = li
        var si: [Endpoint: Int] = [:]
        for (i, segment) in segments.enumerated() {
            for e in segment.endpoints { si[e] = i }
        }
        segmentIndex = si
    }

    /// The node called `name`, if any.
    public func node(named name: String) -> Node? {
        guard let i = nodeIndex[name], i < nodes.count, nodes[i].name == name else {
            return nodes.first { $0.name == name }
        }
        return nodes[i]
    }

    /// The link one of whose ends is `endpoint`, if any.
    public func link(at endpoint: Endpoint) -> Link? {
        guard let i = linkIndex[endpoint], i < links.count,
              links[i].a == endpoint || links[i].b == endpoint else {
            return links.first { $0.a == endpoint || $0.b == endpoint }
        }
        return links[i]
    }

    /// The L2 segment `endpoint` belongs to, if it is a link end.
    public func segment(containing endpoint: Endpoint) -> Segment? {
        guard let i = segmentIndex[endpoint], i < segments.count,
              segments[i].endpoints.contains(endpoint) else {
            return segments.first { $0.endpoints.contains(endpoint) }
        }
        return segments[i]
    }

    /// The interface at `endpoint` (declared, or a switch port), if any.
    public func interface(at endpoint: Endpoint) -> Interface? {
        node(named: endpoint.node)?.interface(named: endpoint.interface)
    }
}

/// The `defaults:` section.
public struct Defaults: Sendable, Hashable {
    /// How userspace nodes open their ports (`datapath:`); default `.afxdp`.
    public var datapath: DatapathKind
    /// Capture every link to pcap (`capture:`); default `false`.
    public var capture: Bool
    /// The fast path on every node that can have it (`fastpath:`); default `false`.
    public var fastPath: Bool

    public init(datapath: DatapathKind = .afxdp, capture: Bool = false, fastPath: Bool = false) {
        self.datapath = datapath
        self.capture = capture
        self.fastPath = fastPath
    }
}

/// How a userspace node's ports are opened.
public enum DatapathKind: String, Sendable, Hashable, CaseIterable {
    /// AF_XDP sockets (libxdp), the default.
    case afxdp
    /// Raw AF_PACKET sockets.
    case afpacket
}

/// One node of the lab. What a kind accepts is registered in `NodeKinds.swift`.
public struct Node: Sendable, Hashable {
    public var name: String
    public var kind: NodeKind
    /// The node's ports, one per link end: declared interfaces in file
    /// order (a bond's members in its place, in member order); for a
    /// switch, one per link end (named as in the links), in link order.
    /// What the element sees is `logicalInterfaces`.
    public var interfaces: [Interface]
    /// Static routes (hosts, routers, directors), in file order.
    public var routes: [Route]
    /// The node's `datapath:` or the lab default. Meaningful for userspace
    /// nodes (switch, router, director); hosts are kernel stacks.
    public var datapath: DatapathKind
    /// The built-in server (`serve:`, hosts only).
    public var serve: ServeSpec?
    /// Commands to run in the node's namespace once the lab is up (`run:`).
    public var run: [String]
    /// Automatic real-server configuration (VIP on `lo`, ARP sysctls, …);
    /// `auto: false` turns it off (hosts only). Default `true`.
    public var auto: Bool
    /// Static 1:1 NAT (`nat:`, routers only).
    public var nat: [StaticNAT]
    /// Virtual services (`services:`, directors only).
    public var services: [Service]
    /// VRRP groups (`vrrp:`, routers and directors; one map or a list).
    public var vrrp: [VRRPConfig]
    /// ECMP hash configuration (`ecmp:`, routers only; default for all).
    public var ecmp: ECMPHashConfig
    /// Where the node's name is written in `nodes:`.
    public var location: SourceLocation
    /// Where the node's `run:` key is written (nil without one).
    public var runLocation: SourceLocation? = nil
    /// IPVS connection sync (`sync:`, directors only); nil = off.
    public var sync: SyncSpec? = nil
    /// What the node can carry (`capacity:`, for `wirelab plan`); empty = unknown.
    public var capacity = NodeCapacity()
    /// BGP (`bgp:`, routers and directors); nil = none.
    public var bgp: BGPSpec? = nil
    /// BFD timers (`bfd:`, routers and directors) for the BGP neighbours
    /// and static routes with `bfd: true`; nil = the defaults
    /// (`BFDSpec()`). A node with `bfd:` also answers the BFD sessions its
    /// directly connected neighbours start (RFC 5880 passive role).
    public var bfd: BFDSpec? = nil

    /// Whether the node runs a control plane on its kernel (BGP on TCP 179,
    /// BFD on UDP 3784): it has `bgp:` or `bfd:`.
    public var runsControlPlane: Bool { bgp != nil || bfd != nil }

    /// Active-backup bonds (`members:` on an interface, routers and
    /// directors), in file order.
    public var bonds: [Bond] = []

    /// Whether the lab's XDP program repeats this node's decided flows in
    /// the kernel (docs/fastpath.md): the node's `fastpath:`, else the
    /// lab's `defaults: { fastpath: }` where the node can have it (a
    /// userspace node on AF_XDP without bonds).
    public var fastPath = false

    /// The interface or bond called `name`, if any.
    public func interface(named name: String) -> Interface? {
        interfaces.first { $0.name == name } ?? bonds.first { $0.name == name }?.logical
    }

    /// The interfaces the element sees, one per port of the element: each
    /// bond in place of its members (where its first member is), every
    /// other interface as it is. Without bonds, `interfaces`.
    public var logicalInterfaces: [Interface] {
        guard !bonds.isEmpty else { return interfaces }
        return interfaces.compactMap { i in
            guard let b = i.bond else { return i }
            guard let bond = bonds.first(where: { $0.name == b }), bond.members.first == i.name else { return nil }
            return bond.logical
        }
    }

    /// All interface addresses of the node (bonds' included), in interface order.
    public var addresses: [IPv4Prefix] { logicalInterfaces.flatMap(\.addresses) }

    /// The connected subnets (interface and bond addresses with host bits cleared).
    public var connectedSubnets: [(interface: String, subnet: IPv4Prefix)] {
        logicalInterfaces.flatMap { i in i.addresses.filter { $0.length < 32 }.map { (i.name, $0.canonical) } }
    }

    /// Whether a userspace data-plane element runs this node (everything but hosts).
    public var isUserspace: Bool { kind.isUserspace }
}

/// One network interface of a node.
public struct Interface: Sendable, Hashable {
    public var name: String
    /// `mac:` if given, else `MACAddress.derived(from: "<lab>/<node>/<interface>")`.
    public var mac: MACAddress
    /// Interface addresses with prefix length, in file order (`ip:`).
    public var addresses: [IPv4Prefix]
    /// The MTU of the interface's link (default 1500).
    public var mtu: Int
    /// The other end of this interface's link.
    public var peer: Endpoint?
    /// Where the interface is declared (for switch ports: the link end).
    public var location: SourceLocation
    /// The bond this port is a member of (it then carries the bond's MAC
    /// and no addresses of its own).
    public var bond: String? = nil
}

/// An active-backup bond of a router or director (`bond0: { ip: …,
/// members: [ eth0, eth1 ] }`): one port for the element, over member
/// ports that are link ends. One member is active (`BondMap`: the first,
/// then the first with carrier when it loses its own); frames go out and
/// are taken in on it only. wirelab's own:
/// the kernel here has no bonding module, and hosts (kernel stacks) stay
/// single-homed.
public struct Bond: Sendable, Hashable {
    public var name: String
    /// `mac:` if given, else derived from the bond's name; every member carries it.
    public var mac: MACAddress
    public var addresses: [IPv4Prefix]
    /// Member port names, in priority order.
    public var members: [String]
    /// The MTU of its members' links (the smallest).
    public var mtu: Int
    public var location: SourceLocation

    /// The bond as the element's one port.
    public var logical: Interface {
        Interface(name: name, mac: mac, addresses: addresses, mtu: mtu, peer: nil, location: location)
    }
}

/// One end of a link, written `node:interface`.
public struct Endpoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var node: String
    public var interface: String

    public init(node: String, interface: String) {
        self.node = node
        self.interface = interface
    }

    /// Parses `node:interface` (exactly one `:`, both sides non-empty).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(node: String(parts[0]), interface: String(parts[1]))
    }

    public var description: String { "\(node):\(interface)" }

    public static func < (a: Endpoint, b: Endpoint) -> Bool {
        (a.node, a.interface) < (b.node, b.interface)
    }
}

/// A veth pair between two interfaces.
public struct Link: Sendable, Hashable {
    public var a: Endpoint
    public var b: Endpoint
    /// Link MTU, 68...9000, default 1500.
    public var mtu: Int
    /// Bits per second in each direction (`bandwidth:`); nil = unknown (no limit).
    public var bandwidth: Rate? = nil
    /// Where the link is written in `links:`.
    public var location: SourceLocation

    /// The end opposite `end`, if `end` is one of this link's ends.
    public func peer(of end: Endpoint) -> Endpoint? {
        end == a ? b : end == b ? a : nil
    }
}

/// A static route. Several next hops make it an ECMP route.
public struct Route: Sendable, Hashable {
    /// The destination prefix (`default` is `0.0.0.0/0`), host bits clear.
    public var destination: IPv4Prefix
    /// Next-hop gateways; two or more means ECMP.
    public var nextHops: [IPv4Address]
    public var location: SourceLocation
    /// `bfd: true` (routers): each next hop carries traffic only while its
    /// BFD session is not known dead (`BFDStaticRoutes`).
    public var bfd = false

    public var isDefault: Bool { destination.length == 0 }
    public var isMultipath: Bool { nextHops.count > 1 }
}

/// ECMP hash configuration of a router (`ecmp: { fields: [...], seed: N }`).
public struct ECMPHashConfig: Sendable, Hashable {
    /// Header fields hashed, in the order written; default all five.
    public var fields: [ECMPHashField]
    /// Hash seed; default 0.
    public var seed: UInt32

    public init(fields: [ECMPHashField] = ECMPHashField.allCases, seed: UInt32 = 0) {
        self.fields = fields
        self.seed = seed
    }
}

/// The built-in server on a host (`serve: { http: 80, udp-echo: 9000 }`).
public struct ServeSpec: Sendable, Hashable {
    /// TCP port of the HTTP server that answers with the node's name.
    public var http: Int?
    /// UDP port of the echo server.
    public var udpEcho: Int?
}

/// A static 1:1 NAT entry on a router: `public` ↔ `private`, both directions.
public struct StaticNAT: Sendable, Hashable {
    public var publicAddress: IPv4Address
    public var privateAddress: IPv4Address
    public var location: SourceLocation
}

/// A virtual service on a director.
public struct Service: Sendable, Hashable {
    public var vip: IPv4Address
    public var port: Int
    /// `protocol:` (tcp | udp), default tcp.
    public var proto: TransportProtocol
    /// Default `wlc`, as in ipvsadm.
    public var scheduler: SchedulerKind
    /// Default `dr`, as in ipvsadm.
    public var mode: ForwardingMode
    public var reals: [RealServer]
    public var health: HealthCheck?
    /// Persistence timeout (`persistence: 300s`).
    public var persistence: DurationSpec?
    /// Client netmask for persistence (`persistence-mask: 255.255.255.0`).
    public var persistenceMask: IPv4Address?
    /// Source addresses of FULLNAT (`local-addresses:`, fullnat only).
    public var localAddresses: [IPv4Address]
    /// Scheduler flags (`flags: [ mh-port, mh-fallback ]`), each of this
    /// service's scheduler; in the order written.
    public var flags: [SchedulerFlag] = []
    /// Schedule a TCP packet without SYN that has no entry (`sloppy: true`,
    /// IPVS sloppy_tcp); default false.
    public var sloppy = false
    public var location: SourceLocation
}

/// One real server of a service.
public struct RealServer: Sendable, Hashable {
    public var ip: IPv4Address
    /// Default: the service port.
    public var port: Int
    /// Default 1; 0 takes the real out of rotation without removing it.
    public var weight: Int
    public var location: SourceLocation
}

/// A health check of a service's real servers.
public struct HealthCheck: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A TCP connect to the real's port.
        case tcp
        /// `GET path`; healthy if the status is `expectStatus`.
        case http(path: String, expectStatus: Int)
    }
    public var kind: Kind
    /// Port to check; default the real's port.
    public var port: Int?
    /// Default 1s.
    public var interval: DurationSpec
    /// Default 1s.
    public var timeout: DurationSpec
    /// Consecutive failures before a real is taken out; default 2.
    public var fail: Int
    /// Consecutive successes before it is put back; default 1.
    public var rise: Int
}

/// One VRRP group of a router or director (`vrrp: { group, priority, vips,
/// interval, preempt, preempt-delay, vmac, interface }`, RFC 9568).
public struct VRRPConfig: Sendable, Hashable {
    /// Virtual router id, 1...255.
    public var group: Int
    /// 1...254, or 255 when the node owns the VIPs (they are its interface addresses).
    public var priority: Int
    public var vips: [IPv4Address]
    /// Advertisement interval, default 1s; whole centiseconds, 10ms...40950ms.
    public var interval: DurationSpec
    /// Default true.
    public var preempt: Bool
    /// After start, how long a lower-priority master is left alone (keepalived's
    /// `preempt_delay`); default 0s.
    public var preemptDelay: DurationSpec = .seconds(0)
    /// Use the virtual MAC 00:00:5e:00:01:<group>; default false (the interface's own MAC).
    public var vmac: Bool = false
    /// The interface the group runs on: as written, or (resolved) the one
    /// whose connected subnet holds the VIPs.
    public var interface: String = ""
    public var location: SourceLocation
    /// Where `interface:` is written, when it is.
    public var interfaceLocation: SourceLocation? = nil

    public init(group: Int, priority: Int, vips: [IPv4Address], interval: DurationSpec, preempt: Bool,
                preemptDelay: DurationSpec = .seconds(0), vmac: Bool = false, interface: String = "",
                location: SourceLocation, interfaceLocation: SourceLocation? = nil) {
        self.group = group
        self.priority = priority
        self.vips = vips
        self.interval = interval
        self.preempt = preempt
        self.preemptDelay = preemptDelay
        self.vmac = vmac
        self.interface = interface
        self.location = location
        self.interfaceLocation = interfaceLocation
    }
}

/// Connection sync on a director (`sync: { group, interface }`): IPVS sync
/// v1 messages to 224.0.0.81:8848 out of `interface`, shared with the
/// directors of the same group.
/// A node's BGP speaker (`bgp: { asn, router-id, multipath, neighbors,
/// announce }`): kernel TCP sessions in the node's namespace; a router
/// installs what it learns, a director announces `announce` while it can
/// serve it.
public struct BGPSpec: Sendable, Hashable {
    public var asn: UInt32
    public var routerID: IPv4Address
    /// ECMP group size for learned routes (routers), 1...64; default 1.
    public var multipath: Int
    public var neighbors: [BGPNeighbor]
    /// Prefixes announced to every neighbour (a director: only while servable).
    public var announce: [IPv4Prefix]
    public var location: SourceLocation
}

/// One BGP neighbour: on a connected subnet of the node.
public struct BGPNeighbor: Sendable, Hashable {
    public var ip: IPv4Address
    public var asn: UInt32
    /// Hold time offered, seconds: 0 or 3...65535 (default 90).
    public var hold: Int
    /// Keepalive interval, seconds, below `hold`; nil = hold / 3.
    public var keepalive: Int?
    /// Run a BFD session with the neighbour (the node's `bfd:` timers).
    public var bfd: Bool
    public var location: SourceLocation
}

/// BFD timers (`bfd: { interval, multiplier }`): desired TX and required RX
/// interval, and the detect multiplier (RFC 5880).
public struct BFDSpec: Sendable, Hashable {
    public var interval = DurationSpec(milliseconds: 300)
    public var multiplier = 3
    public var location: SourceLocation? = nil
    public init(interval: DurationSpec = DurationSpec(milliseconds: 300), multiplier: Int = 3, location: SourceLocation? = nil) {
        self.interval = interval
        self.multiplier = multiplier
        self.location = location
    }
}

public struct SyncSpec: Sendable, Hashable {
    /// IPVS's sync id, 0...255.
    public var group: Int
    /// One of the node's interfaces, with an IPv4 address (the messages' source).
    public var interface: String
    public var location: SourceLocation
}

/// One L2 broadcast domain: the two ends of a plain link, or every link end
/// joined through one or more switches (switches chained by links merge).
public struct Segment: Sendable, Hashable {
    /// Every link end in the domain (switch ports included), in link order.
    public var endpoints: [Endpoint]
    /// Switches inside the domain, in file order.
    public var switches: [String]

    /// Link ends that are not switch ports: the interfaces that send and
    /// receive in this domain.
    public var stations: [Endpoint] {
        endpoints.filter { !switches.contains($0.node) }
    }
}

/// A duration written `500ms`, `1s`, `2m`, `1h` (whole milliseconds).
public struct DurationSpec: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int

    public init(milliseconds: Int) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int) -> DurationSpec { DurationSpec(milliseconds: s * 1000) }

    /// Parses `<digits>[.<digits>]<unit>` with unit `ms`, `s`, `m` or `h`
    /// (DESIGN.md: `0.1s`); the value must be a whole number of milliseconds.
    public init?(_ text: some StringProtocol) {
        let s = String(text)
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        var rest = s.dropFirst(digits.count)
        var fraction = Substring("")
        if rest.first == "." {
            fraction = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
            guard !fraction.isEmpty, fraction.count <= 6 else { return nil }
            rest = rest.dropFirst(1 + fraction.count)
        }
        guard !digits.isEmpty, digits.count <= 9, let n = Int(digits) else { return nil }
        let scale: Int
        switch rest {
        case "ms": scale = 1
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        default: return nil
        }
        // The fraction in millionths of the unit, then in milliseconds (whole only).
        let millionths = Int(fraction.padding(toLength: 6, withPad: "0", startingAt: 0))!
        guard (millionths * scale) % 1_000_000 == 0 else { return nil }
        milliseconds = n * scale + millionths * scale / 1_000_000
    }

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var duration: Swift.Duration { .milliseconds(milliseconds) }

    public var description: String {
        if milliseconds != 0 && milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds != 0 && milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    public static func < (a: DurationSpec, b: DurationSpec) -> Bool { a.milliseconds < b.milliseconds }
}
