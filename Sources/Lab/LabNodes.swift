import Foundation
import LinuxNet
import Topology

/// `wirelab fail` / `heal` for whole nodes: as if the node's power were cut.
/// A userspace node's data plane stops (the daemon, asked over its control
/// socket, discards what arrives and sends and ticks nothing); a kernel
/// host's processes freeze (SIGSTOP). Either way every interface of the
/// node goes down, so its peers lose carrier as they would. `heal` brings
/// back exactly what was there before: an interface whose link was failed
/// on its own stays down until that link heals.
public struct LabNodes {
    public var store: LabStore
    public init(store: LabStore) { self.store = store }

    /// One fail/heal of a running lab: a node's power or a link (drills,
    /// `walk --fail`).
    public static func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target, lab: String, store: LabStore) throws {
        switch (action, target) {
        case (.fail, .node(let n)): try LabNodes(store: store).fail(lab: lab, node: n)
        case (.heal, .node(let n)): try LabNodes(store: store).heal(lab: lab, node: n)
        case (.fail, .link(let e)): _ = try LabLinks(store: store).fail(lab: lab, endpoint: e.description)
        case (.heal, .link(let e)): _ = try LabLinks(store: store).heal(lab: lab, endpoint: e.description)
        }
    }

    /// The node NAME of the lab's topology, or an error listing the nodes.
    public func resolve(lab: String, node name: String) throws -> Node {
        let topology = try TopologyLoader.load(path: store.topologyCopyPath(lab: lab))
        guard let node = topology.node(named: name) else {
            throw LabError("lab \(lab) has no node \(name); nodes: \(topology.nodes.map(\.name).sorted().joined(separator: ", "))")
        }
        return node
    }

    /// Cuts the node's power. Fails if it is already failed.
    @discardableResult
    public func fail(lab: String, node name: String) throws -> Node {
        let lock = try store.lock(lab: lab)
        defer { _ = lock }
        var state = try store.load(lab: lab)
        let node = try resolve(lab: lab, node: name)
        if state.failedNodes.contains(name) {
            throw LabError("node \(name) is already failed; `wirelab heal \(lab) \(name)` brings it back")
        }
        let namespace = LabStore.namespaceName(lab: lab, node: name)
        if node.kind != .host && state.controlSocket == nil {
            throw LabError("lab \(lab) runs no data plane, so \(node.kind.rawValue) \(name) has no power to cut")
        }
        // Recorded before the change, so `heal` (and `down`) can undo a half-done fail.
        state.failedNodes.append(name)
        try store.save(state)
        if node.kind == .host {
            // Frozen first, so nothing in it reacts to its interfaces going down.
            let frozen = try Self.signalProcesses(namespace: namespace, state: state, .stop)
            state.frozenProcesses += frozen
            try store.save(state)
        } else {
            try setPowered(lab: lab, state: state, node: name, false)
        }
        let netlink = try RTNetlink(namespace: namespace)
        for interface in node.interfaces { try netlink.linkSetDown(name: interface.name) }
        return node
    }

    /// Restores a failed node: interfaces up (but those of failed links),
    /// its kernel's routes and neighbours back (an interface going down
    /// flushes them), then a host's processes resume or a userspace node's
    /// data plane runs again.
    @discardableResult
    public func heal(lab: String, node name: String) throws -> Node {
        let lock = try store.lock(lab: lab)
        defer { _ = lock }
        var state = try store.load(lab: lab)
        let node = try resolve(lab: lab, node: name)
        guard state.failedNodes.contains(name) else {
            let failed = state.failedNodes.isEmpty ? "no node is failed" : "failed: \(state.failedNodes.joined(separator: ", "))"
            throw LabError("node \(name) is not failed (\(failed))")
        }
        let topology = try TopologyLoader.load(path: store.topologyCopyPath(lab: lab))
        let namespace = LabStore.namespaceName(lab: lab, node: name)
        let netlink = try RTNetlink(namespace: namespace)
        for interface in node.interfaces where !Self.linkFailed(state, topology, Endpoint(node: name, interface: interface.name)) {
            try netlink.linkSetUp(name: interface.name)
        }
        Self.restoreKernelState(topology: topology, namespace: namespace)
        if node.kind == .host {
            Self.resume(state.frozenProcesses.filter { $0.node == name })
            // And anything else there (a child started just before the freeze).
            _ = try Self.signalProcesses(namespace: namespace, state: state, .continue)
            state.frozenProcesses.removeAll { $0.node == name }
        } else {
            try setPowered(lab: lab, state: state, node: name, true)
        }
        state.failedNodes.removeAll { $0 == name }
        try store.save(state)
        return node
    }

    /// Whether the link at END was failed on its own (by either end).
    static func linkFailed(_ state: LabState, _ topology: ResolvedTopology, _ end: Endpoint) -> Bool {
        guard let link = topology.links.first(where: { $0.a == end || $0.b == end }) else { return false }
        return LabLinks.recorded(state, link.a, link.b) != nil
    }

    /// Puts the node's routes and static neighbours back as `up` made them
    /// (setting an interface down flushes the routes through it). A route
    /// through an interface still down fails; it comes back with that link.
    static func restoreKernelState(topology: ResolvedTopology, namespace: String) {
        let plan = LabPlan(topology: topology, serveCommand: [])
        guard let netlink = try? RTNetlink(namespace: namespace) else { return }
        for n in plan.neighbours where n.namespace == namespace {
            try? netlink.neighbourReplace(n.address, mac: n.mac, interface: n.interface)
        }
        for r in plan.routes where r.namespace == namespace {
            try? netlink.routeReplace(destination: r.destination, via: r.via, interface: nil)
        }
    }

    /// Sends SIGNAL to every process in NAMESPACE but the lab's daemon and
    /// ourselves; returns them as records (for SIGCONT later, by identity).
    static func signalProcesses(namespace: String, state: LabState, _ signal: Signal) throws -> [LabState.ProcessRecord] {
        guard let inode = NamespaceProcesses.inode(ofNamespace: namespace) else {
            throw LabError("namespace \(namespace) is missing")
        }
        // The daemon may live in a host's namespace (a lab of hosts only, recording captures).
        let spared = Set(state.processes.filter { $0.role == "daemon" }.map(\.pid) + [Processes.currentID])
        let node = String(namespace.dropFirst("wl-\(state.lab)-".count))
        var records: [LabState.ProcessRecord] = []
        for pid in NamespaceProcesses.pids(inNamespaces: [inode]) where !spared.contains(pid) {
            guard let start = ProcessIdentity.startTime(of: pid) else { continue }
            if (try? Processes.send(signal, to: pid)) != nil {
                records.append(.init(pid: pid, startTime: start, node: node, role: "frozen"))
            }
        }
        return records
    }

    /// SIGCONT to each record that is still the process it was.
    public static func resume(_ records: [LabState.ProcessRecord]) {
        for record in records where ProcessIdentity.isAlive(record) { try? Processes.send(.continue, to: record.pid) }
    }

    /// Tells the daemon to stop or restart the node's data plane.
    func setPowered(lab: String, state: LabState, node: String, _ on: Bool) throws {
        guard let socket = state.controlSocket else {
            throw LabError("lab \(lab) runs no data plane, so userspace node \(node) cannot be switched \(on ? "on" : "off")")
        }
        let answer = try ControlClient(path: socket).request(ControlRequest(command: "power", args: ["node": node, "on": on ? "true" : "false"]))
        if let object = try? JSONSerialization.jsonObject(with: answer) as? [String: Any], let error = object["error"] as? String {
            throw LabError("the data plane refused to switch \(node) \(on ? "on" : "off"): \(error)")
        }
    }
}
