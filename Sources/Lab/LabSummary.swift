import Foundation
import Topology

/// What `up` prints: every node with its interfaces, MACs and addresses.
public struct LabSummary: Codable, Sendable {
    public struct InterfaceRow: Codable, Sendable {
        public var node: String
        public var kind: String
        public var interface: String
        public var mac: String
        public var addresses: [String]
        public var peer: String?
    }

    public var lab: String
    public var namespaces: Int
    public var links: Int
    public var seconds: Double
    public var interfaces: [InterfaceRow]
    public var notes: [String]

    public init(topology: ResolvedTopology, plan: LabPlan, seconds: Double) {
        lab = topology.name
        namespaces = plan.namespaces.count
        links = plan.veths.count
        self.seconds = seconds
        notes = plan.notes
        var peers: [String: String] = [:]
        for link in topology.links {
            peers["\(link.a.node):\(link.a.interface)"] = "\(link.b.node):\(link.b.interface)"
            peers["\(link.b.node):\(link.b.interface)"] = "\(link.a.node):\(link.a.interface)"
        }
        var rows: [InterfaceRow] = []
        for node in topology.nodes {
            var extra: [String] = []
            // Loopback addresses the plan added (VIPs of DR/TUN real servers).
            for a in plan.addresses where a.namespace == LabStore.namespaceName(lab: lab, node: node.name) && a.interface == "lo" {
                extra.append(a.prefix.description)
            }
            if node.interfaces.isEmpty {
                rows.append(InterfaceRow(node: node.name, kind: node.kind.rawValue, interface: "-", mac: "-", addresses: [], peer: nil))
            }
            for iface in node.interfaces {
                // A bond member: "eth0 (bond0)", with the bond's addresses.
                let bond = iface.bond.flatMap(node.interface(named:))
                rows.append(InterfaceRow(node: node.name, kind: node.kind.rawValue,
                                         interface: iface.bond.map { "\(iface.name) (\($0))" } ?? iface.name,
                                         mac: iface.mac.description, addresses: (bond ?? iface).addresses.map(\.description),
                                         peer: peers["\(node.name):\(iface.name)"]))
            }
            if !extra.isEmpty {
                rows.append(InterfaceRow(node: node.name, kind: node.kind.rawValue, interface: "lo", mac: "-", addresses: extra, peer: nil))
            }
        }
        interfaces = rows
    }

    public func table() -> String {
        var out = "lab \(lab) is up: \(namespaces) nodes, \(links) links in \(String(format: "%.2f", seconds)) s\n\n"
        out += TextTable.render(["NODE", "KIND", "IFACE", "MAC", "ADDRESSES", "PEER"],
                                interfaces.map { [$0.node, $0.kind, $0.interface, $0.mac, $0.addresses.joined(separator: ","), $0.peer ?? "-"] })
        return out
    }

    public func jsonString() throws -> String { try JSON.string(self) }
}

enum JSON {
    static func string(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Left-aligned text table, columns as wide as their widest cell.
public enum TextTable {
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}
