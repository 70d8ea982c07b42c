import Foundation
import Glibc
import LinuxNet
import Topology
import Wire

/// Builds and removes labs. `up` is atomic: every object is recorded in the
/// state file before it is created, and any failure removes what was made.
public struct LabDeployer {
    public var store: LabStore
    /// The wirelab binary, started in nodes as `serve` (and as the daemon).
    public var executable: String
    public var progress: (String) -> Void

    public init(store: LabStore, executable: String, progress: @escaping (String) -> Void = { _ in }) {
        self.store = store
        self.executable = executable
        self.progress = progress
    }

    // MARK: up

    public func up(_ topology: ResolvedTopology) throws -> LabSummary {
        let started = Date()
        let lab = topology.name
        let lock = try store.lock(lab: lab)
        defer { withExtendedLifetime(lock) {} }

        if store.exists(lab: lab) {
            let existing = try? store.load(lab: lab)
            throw LabError("lab \(lab) already exists (from \(existing?.file ?? "?"), \(existing?.phase ?? "?")); nothing was changed — run `wirelab down \(lab)` first")
        }
        let plan = LabPlan(topology: topology, serveCommand: [executable, "serve"])
        // Never adopt or clobber a namespace we did not record.
        let clashes = plan.namespaces.map(\.name).filter { NetworkNamespace.exists($0) }
        if !clashes.isEmpty {
            throw LabError("namespace \(clashes.joined(separator: ", ")) already exists but no lab \(lab) is recorded; nothing was changed — remove it with `ip netns delete` if it is stale")
        }

        var state = LabState(lab: lab, file: topology.file)
        state.namespaces = plan.namespaces.map(\.name)
        try store.save(state)
        // Keep a copy of the file as it was: status and down must not depend
        // on the user's copy staying unchanged.
        try? FileManager.default.copyItem(atPath: topology.file, toPath: store.topologyCopyPath(lab: lab))

        do {
            try build(plan, state: &state)
        } catch {
            progress("failed: \(error); removing what was made")
            try? teardown(state)
            throw error
        }
        state.phase = "up"
        try store.save(state)
        return LabSummary(topology: topology, plan: plan, seconds: Date().timeIntervalSince(started))
    }

    private func build(_ plan: LabPlan, state: inout LabState) throws {
        progress("creating \(plan.namespaces.count) namespaces")
        var handles: [String: NetworkNamespace.Handle] = [:]
        var sockets: [String: RTNetlink] = [:]
        defer { for h in handles.values { h.close() } }
        for ns in plan.namespaces {
            try NetworkNamespace.create(ns.name)
            let handle = try NetworkNamespace.open(ns.name)
            handles[ns.name] = handle
            sockets[ns.name] = try RTNetlink(namespace: handle)
        }
        // Before links exist, so new interfaces inherit "default" settings.
        progress("sysctls")
        for (ns, items) in Dictionary(grouping: plan.sysctls, by: \.namespace) {
            try Sysctl.apply(items.map { Sysctl.Setting($0.key, $0.value) }, namespace: ns)
        }

        progress("creating \(plan.veths.count) veth pairs")
        // Both ends are placed by namespace fd, so one socket creates every
        // pair; requests are pipelined, one ACK per batch.
        if let any = plan.namespaces.first.flatMap({ sockets[$0.name] }) {
            try any.pipelined {
                for veth in plan.veths {
                    try any.linkAddVeth(name: veth.a.interface, peer: veth.b.interface,
                                        peerNamespace: handles[veth.b.namespace], namespace: handles[veth.a.namespace],
                                        mtu: veth.mtu, mac: veth.a.mac, peerMac: veth.b.mac)
                }
            }
        }

        progress("checksum offload off on \(plan.checksumOffloadOff.count) interfaces")
        for (ns, items) in Dictionary(grouping: plan.checksumOffloadOff, by: \.namespace) {
            let ethtool = try Ethtool(namespace: ns)
            for item in items { try ethtool.setOffload(.transmitChecksum, false, interface: item.interface) }
        }

        progress("\(plan.addresses.count) addresses, \(plan.routes.count) routes")
        let up = Dictionary(grouping: plan.veths.flatMap { [$0.a, $0.b] }, by: \.namespace)
        let addresses = Dictionary(grouping: plan.addresses, by: \.namespace)
        let routes = Dictionary(grouping: plan.routes, by: \.namespace)
        for ns in plan.namespaces {
            guard let netlink = sockets[ns.name] else { continue }
            try netlink.pipelined {
                try netlink.linkSetUp(name: "lo")
                for end in up[ns.name] ?? [] { try netlink.linkSetUp(name: end.interface) }
                for a in addresses[ns.name] ?? [] { try netlink.addressAdd(a.prefix, interface: a.interface) }
            }
            // Routes after addresses are in place: a gateway must be reachable.
            if let nodeRoutes = routes[ns.name] {
                try netlink.pipelined {
                    for r in nodeRoutes { try netlink.routeReplace(destination: r.destination, via: r.via, interface: nil) }
                }
            }
        }

        if !plan.processes.isEmpty { progress("starting \(plan.processes.count) processes") }
        let logs = store.directory(lab: plan.lab) + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        for spec in plan.processes {
            let log = "\(logs)/\(spec.node)-\(spec.role.replacingOccurrences(of: "#", with: "")).log"
            let process = try NamespaceProcess.spawn(spec.arguments, namespace: spec.namespace,
                                                     standardOutput: .file(log), standardError: .sameAsStandardOutput,
                                                     detached: true)
            state.processes.append(.init(pid: process.pid, startTime: ProcessIdentity.startTime(of: process.pid) ?? 0,
                                         node: spec.node, role: spec.role))
            try store.save(state)
        }
        try waitForServers(plan)
    }

    /// `up` returns once every built-in server accepts connections, so the
    /// first request a user or test makes does not race the server's start.
    private func waitForServers(_ plan: LabPlan) throws {
        for spec in plan.processes where spec.role == "serve" {
            guard let i = spec.arguments.firstIndex(of: "--http"), let port = UInt16(spec.arguments[i + 1]) else { continue }
            let deadline = Date().addingTimeInterval(10)
            var ready = false
            while !ready && Date() < deadline {
                ready = (try? NetworkNamespace.run(spec.namespace) { Self.canConnect(port: port) }) ?? false
                if !ready { usleep(10_000) }
            }
            if !ready { throw LabError("built-in server on \(spec.node) did not start listening on tcp/\(port) within 10 s (log: \(store.directory(lab: plan.lab))/logs)") }
        }
    }

    static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    // MARK: down

    /// Removes everything recorded for `lab`. Works on half-built and
    /// crashed labs; a second `down` of the same lab is an error saying so.
    public func down(lab: String) throws {
        let lock = try store.lock(lab: lab)
        defer { withExtendedLifetime(lock) {} }
        guard store.exists(lab: lab) else {
            throw LabError("no lab named \(lab) (no state in \(store.directory(lab: lab)))")
        }
        let state = try store.load(lab: lab)
        try teardown(state)
    }

    private func teardown(_ state: LabState) throws {
        progress("removing lab \(state.lab)")
        ProcessIdentity.stop(state.processes)
        // Anything still running inside the lab's namespaces is the lab's:
        // children of `run:` commands, or a process started just before a
        // crash and never recorded. A live process would keep its namespace
        // (and its veths) alive after the namespace file is gone.
        let inodes = Set(state.namespaces.compactMap { NamespaceProcesses.inode(ofNamespace: $0) })
        for pid in NamespaceProcesses.pids(inNamespaces: inodes) where pid != getpid() {
            kill(pid, SIGKILL)
        }
        var failures: [String] = []
        for ns in state.namespaces {
            do { _ = try NetworkNamespace.deleteIfExists(ns) } catch { failures.append("\(ns): \(error)") }
        }
        if !failures.isEmpty {
            throw LabError("could not remove namespaces: \(failures.joined(separator: "; ")); state kept in \(store.directory(lab: state.lab)) so `wirelab down \(state.lab)` can retry")
        }
        store.remove(lab: state.lab)
    }
}

/// Finding processes by the network namespace they live in.
enum NamespaceProcesses {
    static func inode(ofNamespace name: String) -> UInt64? {
        var st = stat()
        guard stat(NetworkNamespace.path(of: name), &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    static func pids(inNamespaces inodes: Set<UInt64>) -> [Int32] {
        guard !inodes.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry) else { continue }
            var st = stat()
            guard stat("/proc/\(pid)/ns/net", &st) == 0 else { continue }
            if inodes.contains(UInt64(st.st_ino)) { result.append(pid) }
        }
        return result
    }
}
