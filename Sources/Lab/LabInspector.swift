import Foundation
import LinuxNet
import Topology

/// What `status` shows: nodes, links, per-interface counters from each
/// node's kernel, processes, and (when a data plane runs) its counters and
/// drops by reason.
public struct LabStatusReport: Codable, Sendable {
    public struct InterfaceCounters: Codable, Sendable {
        public var interface: String
        public var rxPackets: UInt64
        public var rxBytes: UInt64
        public var rxDropped: UInt64
        public var txPackets: UInt64
        public var txBytes: UInt64
        public var txDropped: UInt64
    }

    public struct NodeStatus: Codable, Sendable {
        public var name: String
        public var kind: String
        public var namespace: String
        public var present: Bool
        /// Power cut by `wirelab fail NODE`.
        public var failed: Bool = false
        public var interfaces: [InterfaceCounters]
    }

    public struct ProcessStatus: Codable, Sendable {
        public var node: String?
        public var role: String
        public var pid: Int32
        public var running: Bool
        /// Stopped (SIGSTOP) on a failed host.
        public var frozen: Bool = false
    }

    public struct LinkStatus: Codable, Sendable {
        public var a: String
        public var b: String
        public var mtu: Int
        /// Taken down by `wirelab fail` (both ends down).
        public var failed: Bool
    }

    public var lab: String
    public var file: String
    public var phase: String
    public var createdAt: Date
    public var nodes: [NodeStatus]
    public var links: [LinkStatus]
    public var processes: [ProcessStatus]
    /// Links failed by `wirelab fail`, each as the end it was named by.
    public var failedLinks: [String]
    /// Nodes whose power `wirelab fail` cut.
    public var failedNodes: [String] = []
    /// Data-plane counters per node and port, and drops by reason, when the
    /// lab's daemon answers.
    public var datapath: DatapathStatus?

    public func jsonString() throws -> String { try JSON.string(self) }

    public func text() -> String {
        var out = "lab \(lab) (\(phase), from \(file))\n\n"
        var rows: [[String]] = []
        for node in nodes {
            if !node.present { rows.append([node.name, node.kind, "(namespace missing)", "", "", ""]); continue }
            for i in node.interfaces {
                rows.append([node.name + (node.failed ? " (FAILED)" : ""), node.kind, i.interface, "\(i.rxPackets)/\(i.rxBytes)", "\(i.txPackets)/\(i.txBytes)", "\(i.rxDropped)/\(i.txDropped)"])
            }
        }
        out += TextTable.render(["NODE", "KIND", "IFACE", "RX pkts/bytes", "TX pkts/bytes", "DROP rx/tx"], rows)
        if !links.isEmpty {
            out += "\n" + TextTable.render(["LINK", "", "MTU", "STATE"], links.map { [$0.a, $0.b, String($0.mtu), $0.failed ? "FAILED" : "up"] })
        }
        if !failedLinks.isEmpty {
            out += "\nfailed links: \(failedLinks.joined(separator: ", ")) (`wirelab heal \(lab) NODE:IFACE` brings one back)\n"
        }
        if !failedNodes.isEmpty {
            out += (failedLinks.isEmpty ? "\n" : "") + "failed nodes: \(failedNodes.joined(separator: ", ")) (power cut; `wirelab heal \(lab) NODE` brings one back)\n"
        }
        if !processes.isEmpty {
            out += "\n" + TextTable.render(["PROCESS", "NODE", "PID", "STATE"],
                                           processes.map { [$0.role, $0.node ?? "-", String($0.pid), $0.running ? ($0.frozen ? "frozen" : "running") : "exited"] })
        }
        if let datapath { out += "\n" + datapath.text() }
        return out
    }
}

public struct LabInspector {
    public var store: LabStore
    public init(store: LabStore) { self.store = store }

    public func status(lab: String) throws -> LabStatusReport {
        let state = try store.load(lab: lab)
        let topology = try? TopologyLoader.load(path: store.topologyCopyPath(lab: lab))
        var nodes: [LabStatusReport.NodeStatus] = []
        for ns in state.namespaces {
            let name = String(ns.dropFirst("wl-\(lab)-".count))
            let kind = topology?.node(named: name)?.kind.rawValue ?? "?"
            guard NetworkNamespace.exists(ns) else {
                nodes.append(.init(name: name, kind: kind, namespace: ns, present: false, failed: state.failedNodes.contains(name), interfaces: []))
                continue
            }
            let counters = (try? NetworkNamespace.run(ns) { try Self.interfaceCounters() }) ?? []
            nodes.append(.init(name: name, kind: kind, namespace: ns, present: true, failed: state.failedNodes.contains(name),
                               interfaces: counters.filter { $0.interface != "lo" }))
        }
        let failed = Set(state.failedLinks)
        let links = (topology?.links ?? []).map {
            LabStatusReport.LinkStatus(a: "\($0.a.node):\($0.a.interface)", b: "\($0.b.node):\($0.b.interface)", mtu: $0.mtu,
                                       failed: failed.contains($0.a.description) || failed.contains($0.b.description))
        }
        let processes = state.processes.map {
            LabStatusReport.ProcessStatus(node: $0.node, role: $0.role, pid: $0.pid, running: ProcessIdentity.isAlive($0),
                                          frozen: ProcessIdentity.isAlive($0) && Processes.status(of: $0.pid)?.state == "T")
        }
        let datapath = state.controlSocket.flatMap { try? ControlClient(path: $0).status() }
        return LabStatusReport(lab: lab, file: state.file, phase: state.phase, createdAt: state.createdAt,
                               nodes: nodes, links: links, processes: processes, failedLinks: state.failedLinks,
                               failedNodes: state.failedNodes, datapath: datapath)
    }

    /// /proc/net/dev of the calling thread's namespace (thread-self, since
    /// /proc/self/net follows the main thread's namespace).
    static func interfaceCounters() throws -> [LabStatusReport.InterfaceCounters] {
        let text = try ProcFile.read("/proc/thread-self/net/dev")   // whole: a switch of 40 ports has more than 4 KiB of it
        return text.split(separator: "\n").dropFirst(2).compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            let f = parts[1].split(separator: " ").compactMap { UInt64($0) }
            guard f.count >= 16 else { return nil }
            return .init(interface: parts[0].trimmingCharacters(in: .whitespaces), rxPackets: f[1], rxBytes: f[0], rxDropped: f[3],
                         txPackets: f[9], txBytes: f[8], txDropped: f[11])
        }
    }
}
