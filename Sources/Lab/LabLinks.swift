import Foundation
import LinuxNet
import Topology

/// `wirelab fail` / `heal` for links: both veth ends of a link set down (or
/// up) through rtnetlink inside each end's namespace, and the failed links
/// recorded in the lab's state. (Whole nodes: `LabNodes`.)
public struct LabLinks {
    public var store: LabStore
    public init(store: LabStore) { self.store = store }

    /// The link with end ENDPOINT ("NODE:IFACE") in the lab's topology, both
    /// ends in the order (named end, peer), or an error naming what is unknown.
    public func resolve(lab: String, endpoint text: String) throws -> (Endpoint, Endpoint) {
        guard let end = Endpoint(text) else {
            throw LabError("'\(text)' is not NODE:IFACE")
        }
        let topology = try TopologyLoader.load(path: store.topologyCopyPath(lab: lab))
        guard let node = topology.node(named: end.node) else {
            throw LabError("lab \(lab) has no node \(end.node); nodes: \(topology.nodes.map(\.name).sorted().joined(separator: ", "))")
        }
        guard let link = topology.links.first(where: { $0.a == end || $0.b == end }), let peer = link.peer(of: end) else {
            let names = node.interfaces.map(\.name)
            throw LabError("node \(end.node) of lab \(lab) has no linked interface \(end.interface); its interfaces: \(names.joined(separator: ", "))")
        }
        return (end, peer)
    }

    /// Sets both ends of the link down and records it as failed. Fails if
    /// the link (by either end) is already failed.
    public func fail(lab: String, endpoint text: String) throws -> (Endpoint, Endpoint) {
        let lock = try store.lock(lab: lab)
        defer { _ = lock }
        var state = try store.load(lab: lab)
        let (end, peer) = try resolve(lab: lab, endpoint: text)
        if let recorded = Self.recorded(state, end, peer) {
            throw LabError("link \(end) — \(peer) is already failed (as \(recorded)); `wirelab heal \(lab) \(recorded)` brings it back")
        }
        // Recorded before the change, so `heal` can undo a half-done fail.
        state.failedLinks.append(end.description)
        try store.save(state)
        try setBoth(lab: lab, state: state, end, peer, up: false)
        return (end, peer)
    }

    /// Sets both ends of a failed link up and forgets the failure.
    public func heal(lab: String, endpoint text: String) throws -> (Endpoint, Endpoint) {
        let lock = try store.lock(lab: lab)
        defer { _ = lock }
        var state = try store.load(lab: lab)
        let (end, peer) = try resolve(lab: lab, endpoint: text)
        guard let recorded = Self.recorded(state, end, peer) else {
            let failed = state.failedLinks.isEmpty ? "no link is failed" : "failed: \(state.failedLinks.joined(separator: ", "))"
            throw LabError("link \(end) — \(peer) is not failed (\(failed))")
        }
        state.failedLinks.removeAll { $0 == recorded }
        try setBoth(lab: lab, state: state, end, peer, up: true)
        try store.save(state)
        return (end, peer)
    }

    static func recorded(_ state: LabState, _ end: Endpoint, _ peer: Endpoint) -> String? {
        state.failedLinks.first { $0 == end.description || $0 == peer.description }
    }

    /// Both ends down, or up — but the end of a failed node stays down
    /// (it comes up when the node heals). Up puts back the routes that
    /// going down flushed from the ends' kernels.
    func setBoth(lab: String, state: LabState, _ end: Endpoint, _ peer: Endpoint, up: Bool) throws {
        let topology = up ? try TopologyLoader.load(path: store.topologyCopyPath(lab: lab)) : nil
        for e in [end, peer] where !(up && state.failedNodes.contains(e.node)) {
            let namespace = LabStore.namespaceName(lab: lab, node: e.node)
            let netlink = try RTNetlink(namespace: namespace)
            if up { try netlink.linkSetUp(name: e.interface) } else { try netlink.linkSetDown(name: e.interface) }
            if let topology { LabNodes.restoreKernelState(topology: topology, namespace: namespace) }
        }
    }
}
