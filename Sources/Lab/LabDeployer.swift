import Foundation
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
    /// Captures go to `<captureRoot>/<lab>/` (DESIGN.md: `Captures/<name>/`).
    public var captureRoot: String
    /// False builds the lab without its data-plane daemon: the deploy
    /// benchmark compares deployment with a script that has no data plane.
    public var startsDataPlane = true
    /// What the machine offers, read when `up` starts (tests substitute it).
    public var resources: () -> SystemResources = { SystemResources.current() }

    public init(store: LabStore, executable: String, captureRoot: String = "Captures",
                progress: @escaping (String) -> Void = { _ in }) {
        self.store = store
        self.executable = executable
        self.captureRoot = captureRoot
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
        let problems = LabLimits.problems(topology, controlSocket: store.controlSocketPath(lab: lab),
                                          resources: resources(), dataPlane: startsDataPlane)
        if !problems.isEmpty {
            try? lock.removeFile()
            throw LabError("lab \(lab) does not fit this machine; nothing was created:\n  " + problems.joined(separator: "\n  "))
        }
        // Never adopt or clobber a namespace we did not record.
        let clashes = plan.namespaces.map(\.name).filter { NetworkNamespace.exists($0) }
        if !clashes.isEmpty {
            try? lock.removeFile()
            throw LabError("namespace \(clashes.joined(separator: ", ")) already exists but no lab \(lab) is recorded; nothing was changed — remove it with `ip netns delete` if it is stale")
        }

        var state = LabState(lab: lab, file: URL(fileURLWithPath: topology.file).standardizedFileURL.path)
        state.namespaces = plan.namespaces.map(\.name)
        if topology.defaults.capture {
            state.captureDirectory = URL(fileURLWithPath: captureRoot).appendingPathComponent(lab).standardizedFileURL.path
        }
        try store.save(state)
        // Keep a copy of the file as it was: status and down must not depend
        // on the user's copy staying unchanged.
        try? FileManager.default.copyItem(atPath: topology.file, toPath: store.topologyCopyPath(lab: lab))

        do {
            try build(plan, state: &state)
        } catch {
            progress("failed: \(error); removing what was made")
            // The lock file goes with the lab; if teardown failed, the
            // state stays for `down` to retry, and so does the lock file.
            if (try? teardown(state)) != nil { try? lock.removeFile() }
            throw error
        }
        state.phase = "up"
        try store.save(state)
        waitForVRRPElections(topology, lab: lab)
        return LabSummary(topology: topology, plan: plan, seconds: Date().timeIntervalSince(started))
    }

    private func build(_ plan: LabPlan, state: inout LabState) throws {
        progress("creating \(plan.namespaces.count) namespaces")
        var handles: [String: NetworkNamespace.Handle] = [:]
        var sockets: [String: RTNetlink] = [:]
        defer { for h in handles.values { h.close() } }
        // Several at once: a namespace's creation waits in the kernel
        // (BlockingWork). Each is recorded in the state already.
        // (On a failure the handles and sockets close as `opened` goes.)
        final class Opened: @unchecked Sendable {   // each slot written by one thread, read after all ended
            var slots: UnsafeMutableBufferPointer<(NetworkNamespace.Handle, RTNetlink)?>
            init(_ n: Int) { slots = .allocate(capacity: n); slots.initialize(repeating: nil) }
            deinit { slots.deinitialize(); slots.deallocate() }
        }
        let names = plan.namespaces.map(\.name)
        let opened = Opened(names.count)
        try BlockingWork.forEach(names.count) { i in
            try NetworkNamespace.create(names[i])
            let handle = try NetworkNamespace.open(names[i])
            opened.slots[i] = (handle, try RTNetlink(namespace: handle))
        }
        for case let (handle, netlink)? in opened.slots {
            handles[handle.name] = handle
            sockets[handle.name] = netlink
        }
        // Namespace-wide keys before links exist, so new interfaces inherit
        // "default"; keys of one interface once it exists.
        progress("sysctls")
        func apply(_ sysctls: [LabPlan.Sysctl]) throws {
            let byNamespace = Array(Dictionary(grouping: sysctls, by: \.namespace))
            try BlockingWork.forEach(byNamespace.count) { i in
                try Sysctl.apply(byNamespace[i].value.map { Sysctl.Setting($0.key, $0.value) }, namespace: byNamespace[i].key)
            }
        }
        try apply(plan.sysctls.filter { !$0.isPerInterface })

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

        try apply(plan.sysctls.filter(\.isPerInterface))

        progress("checksum offload off on \(plan.checksumOffloadOff.count) interfaces")
        let offload = Array(Dictionary(grouping: plan.checksumOffloadOff, by: \.namespace))
        try BlockingWork.forEach(offload.count) { i in
            let ethtool = try Ethtool(namespace: offload[i].key)
            for item in offload[i].value { try ethtool.setOffload(.transmitChecksum, false, interface: item.interface) }
        }

        progress("\(plan.addresses.count) addresses, \(plan.routes.count) routes")
        let up = Dictionary(grouping: plan.veths.flatMap { [$0.a, $0.b] }, by: \.namespace)
        let addresses = Dictionary(grouping: plan.addresses, by: \.namespace)
        let routes = Dictionary(grouping: plan.routes, by: \.namespace)
        let neighbours = Dictionary(grouping: plan.neighbours, by: \.namespace)
        for ns in plan.namespaces {
            guard let netlink = sockets[ns.name] else { continue }
            try netlink.pipelined {
                try netlink.linkSetUp(name: "lo")
                for end in up[ns.name] ?? [] { try netlink.linkSetUp(name: end.interface) }
                for a in addresses[ns.name] ?? [] { try netlink.addressAdd(a.prefix, interface: a.interface) }
                for n in neighbours[ns.name] ?? [] { try netlink.neighbourReplace(n.address, mac: n.mac, interface: n.interface) }
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
        }
        // Once for all (a save is a file written and renamed): a failure
        // before it tears down from `state` in memory, and a crash leaves
        // processes `down` finds in the lab's namespaces.
        if !plan.processes.isEmpty { try store.save(state) }
        try waitForServers(plan)
        if startsDataPlane { try startDaemon(plan, state: &state) }
    }

    /// Starts the lab's daemon when the lab has userspace nodes (the data
    /// plane) or records its links (a lab of kernel hosts only still gets
    /// its captures, libpcap at every receiving interface), and waits until
    /// it answers on its control socket with every port open.
    private func startDaemon(_ plan: LabPlan, state: inout LabState) throws {
        let recordsOnly = plan.userspaceNamespaces.isEmpty && state.captureDirectory != nil
        guard let home = plan.userspaceNamespaces.first ?? (recordsOnly ? plan.namespaces.first?.name : nil) else { return }
        progress(recordsOnly ? "starting the capture recorder (no userspace nodes)"
                             : "starting the data plane (\(plan.userspaceNamespaces.count) userspace nodes)")
        let log = store.directory(lab: plan.lab) + "/logs/daemon.log"
        if let dir = state.captureDirectory {
            // A fresh recording per `up`: old files of this lab would mix in.
            try? FileManager.default.removeItem(atPath: dir)
        }
        // The daemon lives in one of the lab's namespaces: it enters the
        // others on threads of its own, and `down` finds it there even if
        // its record were lost.
        let process = try NamespaceProcess.spawn([executable, "daemon", plan.lab, "--state-dir", store.root],
                                                 namespace: home, standardOutput: .file(log),
                                                 standardError: .sameAsStandardOutput, detached: true)
        let record = LabState.ProcessRecord(pid: process.pid, startTime: ProcessIdentity.startTime(of: process.pid) ?? 0,
                                            node: nil, role: "daemon")
        state.processes.append(record)
        state.controlSocket = store.controlSocketPath(lab: plan.lab)
        try store.save(state)
        let deadline = Date().addingTimeInterval(30)
        let client = ControlClient(path: store.controlSocketPath(lab: plan.lab))
        while Date() < deadline {
            if (try? client.status()) != nil { return }
            if !ProcessIdentity.isAlive(record) || ProcessIdentity.isZombie(record.pid) {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                let last = text.split(separator: "\n").last.map(String.init) ?? "no output"
                throw LabError("the data plane failed to start: \(last) (log: \(log))")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw LabError("the data plane did not answer within 30 s (log: \(log))")
    }

    /// With VRRP, nobody answers for a VIP until its group has elected a
    /// master (a Master_Down_Interval after start: 3.6 s at the default 1 s
    /// interval). `up` waits for that, as it waits for servers, so the first
    /// request to a VIP does not race the election; a group that has not
    /// settled by then is left as it is (`status` shows it).
    private func waitForVRRPElections(_ topology: ResolvedTopology, lab: String) {
        let groups = topology.nodes.flatMap(\.vrrp)
        guard !groups.isEmpty else { return }
        // The longest Master_Down_Interval (3 × interval + skew < 4 × interval), and a margin.
        let limit = Double(groups.map(\.interval.milliseconds).max() ?? 1000) * 4 / 1000 + 1
        progress("waiting for VRRP elections (\(groups.count) groups, at most \(String(format: "%.1f", limit)) s)")
        let client = ControlClient(path: store.controlSocketPath(lab: lab))
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if let status = try? client.status() {
                let all = status.nodes.flatMap { $0.vrrp ?? [] }
                if !all.isEmpty && all.allSatisfy({ $0.state == "master" || ($0.state == "backup" && $0.master != nil) }) { return }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
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
                if !ready { Thread.sleep(forTimeInterval: 0.01) }
            }
            if !ready { throw LabError("built-in server on \(spec.node) did not start listening on tcp/\(port) within 10 s (log: \(store.directory(lab: plan.lab))/logs)") }
        }
    }

    static func canConnect(port: UInt16) -> Bool {
        guard let socket = try? Socket.open(.tcp) else { return false }
        defer { socket.close() }
        return (try? socket.connect(to: .ipv4(IPv4Address(rawValue: 0x7F00_0001), port: port))) == true
    }

    // MARK: down

    /// Removes everything recorded for `lab`. Works on half-built and
    /// crashed labs; a second `down` of the same lab is an error saying so.
    public func down(lab: String) throws {
        let lock = try store.lock(lab: lab)
        defer { withExtendedLifetime(lock) {} }
        guard store.exists(lab: lab) else {
            try? lock.removeFile()
            throw LabError("no lab named \(lab) (no state in \(store.directory(lab: lab)))")
        }
        let state = try store.load(lab: lab)
        try teardown(state)
        // `up` left the lock file beside the state; it goes with the lab,
        // removed while still held (FileLock.removeFile).
        try lock.removeFile()
    }

    private func teardown(_ state: LabState) throws {
        progress("removing lab \(state.lab)")
        // Frozen processes of failed hosts first: a stopped process does not
        // act on SIGTERM, and would hold `down` for its whole grace time.
        LabNodes.resume(state.frozenProcesses)
        let inodes = Set(state.namespaces.compactMap { NamespaceProcesses.inode(ofNamespace: $0) })
        for pid in NamespaceProcesses.pids(inNamespaces: inodes) where pid != Processes.currentID {
            if Processes.status(of: pid)?.state == "T" { try? Processes.send(.continue, to: pid) }
        }
        // The daemon first, with time to close its captures; then the rest
        // together (SIGTERM all, one wait), so big labs stop quickly.
        for record in state.processes where record.role == "daemon" {
            if state.captureDirectory != nil { progress("closing captures") }
            ProcessIdentity.stop(record, grace: 120)
        }
        ProcessIdentity.stop(state.processes.filter { $0.role != "daemon" })
        // Anything still running inside the lab's namespaces is the lab's:
        // children of `run:` commands, or a process started just before a
        // crash and never recorded. A live process would keep its namespace
        // (and its veths) alive after the namespace file is gone.
        for pid in NamespaceProcesses.pids(inNamespaces: inodes) where pid != Processes.currentID {
            try? Processes.send(.kill, to: pid)
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
