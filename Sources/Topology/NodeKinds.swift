// Node kinds, registered in one place: what each kind is and which node
// keys it accepts. The decoder asks this table; nothing else lists kinds.

/// What a node is.
public enum NodeKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A kernel network stack in its own namespace (clients, real servers).
    case host
    /// A userspace learning L2 switch; its ports come from links.
    case `switch`
    /// A userspace IPv4 router (FIB, ARP, ECMP, static NAT).
    case router
    /// A userspace LVS-style director (services, schedulers, VRRP, connection sync).
    case director

    public var description: String { rawValue }

    /// Whether a userspace data-plane element runs the node (all but hosts).
    public var isUserspace: Bool { spec.isUserspace }
    /// Whether the node declares `interfaces:` (all but switches).
    public var declaresInterfaces: Bool { spec.declaresInterfaces }
}

/// The node keys the format knows, and the kinds that take each.
enum NodeKey: String, CaseIterable {
    case kind, interfaces, routes, datapath, fastpath, run, serve, auto, nat, ecmp, services, vrrp, sync, bgp, bfd, capacity
}

extension NodeKind {
    struct Spec {
        /// "a host", for messages.
        let article: String
        /// Node keys this kind accepts (besides `kind`).
        let keys: [NodeKey]
        let declaresInterfaces: Bool
        let isUserspace: Bool
    }

    /// The registry.
    static let specs: [NodeKind: Spec] = [
        .host: Spec(article: "a host", keys: [.interfaces, .routes, .serve, .run, .auto, .capacity],
                    declaresInterfaces: true, isUserspace: false),
        .switch: Spec(article: "a switch", keys: [.datapath, .fastpath, .run, .capacity],
                      declaresInterfaces: false, isUserspace: true),
        .router: Spec(article: "a router", keys: [.interfaces, .routes, .nat, .ecmp, .vrrp, .bgp, .bfd, .datapath, .fastpath, .run, .capacity],
                      declaresInterfaces: true, isUserspace: true),
        .director: Spec(article: "a director", keys: [.interfaces, .routes, .services, .vrrp, .sync, .bgp, .bfd, .datapath, .fastpath, .run, .capacity],
                        declaresInterfaces: true, isUserspace: true),
    ]

    var spec: Spec { NodeKind.specs[self]! }

    /// Every key a node of this kind may have, `kind` first, in the order of `NodeKey`.
    var validKeys: [String] {
        NodeKey.allCases.filter { $0 == .kind || spec.keys.contains($0) }.map(\.rawValue)
    }

    /// Kinds that accept `key`.
    static func kinds(accepting key: NodeKey) -> [NodeKind] {
        allCases.filter { $0.spec.keys.contains(key) }
    }

    /// A copy-paste example of a node of this kind.
    var example: String {
        switch self {
        case .host: return "{ kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } }, routes: [ \"default via 10.0.0.254\" ] }"
        case .switch: return "{ kind: switch }"
        case .router: return "{ kind: router, interfaces: { eth0: { ip: 10.0.0.254/24 }, eth1: { ip: 10.1.0.254/24 } } }"
        case .director: return "{ kind: director, interfaces: { eth0: { ip: 10.0.0.2/24 } }, services: [ … ] }"
        }
    }
}
