import Datapath

// "Who took over" in a drill report: the VRRP masters of each group before
// an event and at the end of its window, compared. The same for the live
// lab (the daemon's status) and the simulator (its elements).

/// The VRRP masters of a lab at one moment, and what changed between two.
public enum DrillTakeover {
    /// Masters by group (`"10.0.0.100 (vrrp 17)"` → `"lvs1"`; two masters
    /// at once, a split brain, are both named). Groups without a master
    /// map to `"none"`.
    public static func masters(_ nodes: [(node: String, groups: [VRRPGroupStatus])]) -> [String: String] {
        var out: [String: [String]] = [:]
        for (node, groups) in nodes {
            for g in groups {
                let key = "\(g.vips.joined(separator: ", ")) (vrrp \(g.group))"
                out[key, default: []] += g.state == "master" ? [node] : []
            }
        }
        return out.mapValues { $0.isEmpty ? "none" : $0.sorted().joined(separator: " + ") }
    }

    /// What changed, group by group: `"10.0.0.100 (vrrp 17): lvs1 → lvs2"`;
    /// nil when no master changed.
    public static func describe(before: [String: String], after: [String: String]) -> String? {
        let changes = after.keys.sorted().compactMap { key -> String? in
            let old = before[key] ?? "none", new = after[key] ?? "none"
            return old == new ? nil : "\(key): \(old) → \(new)"
        }
        return changes.isEmpty ? nil : changes.joined(separator: "; ")
    }
}

extension Simulator {
    /// Every router's and director's VRRP groups as `status` shows them.
    public func vrrpGroups() -> [(node: String, groups: [VRRPGroupStatus])] {
        topology.nodes.compactMap { node in
            guard case let .forwarder(f)? = element(node.name),
                  let groups = VRRPGroupStatus.groups(of: f, node: node, now: Instant(nanoseconds: now)) else { return nil }
            return (node.name, groups)
        }
    }
}
