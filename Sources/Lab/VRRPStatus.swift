import Datapath
import Topology
import Wire

extension VRRPGroupStatus {
    /// A group as `status`/`lvs` show it; `now` dates the last transition.
    public init(_ g: VRRPInstance, interfaces: [Interface], now: Instant) {
        let c = g.configuration
        let last = g.transitions.last.map { t in
            "\(t.from.rawValue) → \(t.to.rawValue): \(t.reason) (\(Self.seconds(now.nanoseconds &- t.at.nanoseconds)) s ago)"
        }
        self.init(group: Int(c.vrid), interface: interfaces.indices.contains(c.port.rawValue) ? interfaces[c.port.rawValue].name : "?",
                  state: g.state.rawValue, priority: Int(c.priority), master: g.masterAddress?.description,
                  masterPriority: g.masterPriority.map(Int.init), vips: c.vips.map(\.description),
                  interval: Double(c.interval) / 100, masterInterval: Double(g.masterAdverInterval) / 100, vmac: c.vmac,
                  advertsSent: g.counters.advertsSent, advertsReceived: g.counters.advertsReceived,
                  becameMaster: g.counters.becameMaster, lastTransition: last)
    }

    /// Every group of a node (nil when it has none).
    public static func groups(of forwarder: NodeForwarder, node: Node, now: Instant) -> [VRRPGroupStatus]? {
        guard let groups = forwarder.vrrpNode?.vrrp, !groups.isEmpty else { return nil }
        return groups.instances.map { VRRPGroupStatus($0, interfaces: node.logicalInterfaces, now: now) }
    }

    static func seconds(_ ns: UInt64) -> String {
        let ms = ns / 1_000_000
        let frac = String(ms % 1000)
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }
}
