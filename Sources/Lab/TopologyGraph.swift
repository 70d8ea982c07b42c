import Topology
import Wire

/// A picture of a topology: Graphviz dot or Mermaid flowchart. Nodes are
/// shaped by kind; links are labelled with interface names and subnets.
public enum TopologyGraph {
    public enum Format: String, CaseIterable, Sendable { case dot, mermaid }

    public static func render(_ topology: ResolvedTopology, format: Format) -> String {
        switch format {
        case .dot: return dot(topology)
        case .mermaid: return mermaid(topology)
        }
    }

    /// The label of one link: "eth1 — p1" and the subnets on either end.
    static func label(_ link: Link, in topology: ResolvedTopology) -> String {
        var subnets: [String] = []
        for end in [link.a, link.b] {
            if let iface = topology.node(named: end.node)?.interfaces.first(where: { $0.name == end.interface }) {
                for p in iface.addresses where !subnets.contains(p.canonical.description) {
                    subnets.append(p.canonical.description)
                }
            }
        }
        let ends = "\(link.a.interface) — \(link.b.interface)"
        return subnets.isEmpty ? ends : ends + "\\n" + subnets.joined(separator: ", ")
    }

    static func addresses(_ node: Node) -> String {
        node.addresses.map { $0.address.description }.joined(separator: ", ")
    }

    static func dot(_ t: ResolvedTopology) -> String {
        var out = "graph \"\(escape(t.name))\" {\n  graph [rankdir=LR, fontname=\"Helvetica\", label=\"\(escape(t.name))\"];\n"
        out += "  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n"
        for node in t.nodes {
            let shape: String
            switch node.kind {
            case .host: shape = "box"
            case .switch: shape = "box3d"
            case .router: shape = "ellipse"
            case .director: shape = "hexagon"
            }
            let addrs = addresses(node)
            let label = "\(node.name)\\n(\(node.kind.rawValue))" + (addrs.isEmpty ? "" : "\\n\(addrs)")
            out += "  \"\(escape(node.name))\" [shape=\(shape), label=\"\(escape(label))\"];\n"
        }
        for link in t.links {
            out += "  \"\(escape(link.a.node))\" -- \"\(escape(link.b.node))\" [label=\"\(escape(label(link, in: t)))\"];\n"
        }
        return out + "}\n"
    }

    static func mermaid(_ t: ResolvedTopology) -> String {
        var out = "flowchart LR\n"
        func id(_ name: String) -> String { "n_" + name.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }
        for node in t.nodes {
            let addrs = addresses(node)
            let text = "\(node.name)<br/>\(node.kind.rawValue)" + (addrs.isEmpty ? "" : "<br/>\(addrs)")
            let q = "\"\(text.replacingOccurrences(of: "\"", with: "'"))\""
            switch node.kind {
            case .host: out += "  \(id(node.name))[\(q)]\n"
            case .switch: out += "  \(id(node.name))[[\(q)]]\n"
            case .router: out += "  \(id(node.name))((\(q)))\n"
            case .director: out += "  \(id(node.name)){{\(q)}}\n"
            }
        }
        for link in t.links {
            let l = label(link, in: t).replacingOccurrences(of: "\\n", with: "<br/>").replacingOccurrences(of: "\"", with: "'")
            out += "  \(id(link.a.node)) ---|\"\(l)\"| \(id(link.b.node))\n"
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\\\\n", with: "\\n")
    }
}
