// Pictures of a probe's path, drawn by wirelab itself (no Graphviz, no
// script, no network at view time): a Mermaid sequence diagram, and two SVG
// drawings the HTML pages embed — the topology with the path on it, and a
// ladder of the hops.
import Topology
import Wire

public enum WalkPictures {
    // MARK: Mermaid

    /// The walk as a Mermaid sequence diagram: one participant per node the
    /// probe crossed, one arrow per hop labelled with the fields that
    /// changed there (the first hop with its addresses), request then reply.
    public static func mermaid(_ report: WalkReport) -> String {
        let path = report.path
        var out = "sequenceDiagram\n"
        out += "    %% \(mermaidComment(title(report)))\n"
        let nodes = participants(path)
        for (i, node) in nodes.enumerated() { out += "    participant p\(i) as \(mermaidText(node))\n" }
        guard let first = nodes.first else { return out + "    %% the probe was not seen on any link\n" }
        let id = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, "p\($0)") })
        var direction: ProbeMarker.Direction?
        for hop in path.hops {
            if hop.direction != direction {
                direction = hop.direction
                let span = nodes.count > 1 ? "p0,p\(nodes.count - 1)" : "p0"
                out += "    Note over \(span): \(hop.direction == .request ? "request" : "reply")\n"
            }
            let arrow = hop.direction == .request ? "->>" : "-->>"
            out += "    \(id[hop.sender.node]!)\(arrow)\(id[hop.receiver.node]!): \(mermaidText(label(hop)))\n"
        }
        if path.reply.isEmpty { out += "    Note over \(id[first]!): no reply was seen\n" }
        return out
    }

    /// Message text: Mermaid ends a message at `;` and `#` starts an entity.
    static func mermaidText(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "#": out += "#35;"
            case ";": out += "#59;"
            default: out.append(c)
            }
        }
        return out
    }

    static func mermaidComment(_ s: String) -> String { s.replacingOccurrences(of: "\n", with: " ") }

    // MARK: What the pictures say

    static func title(_ report: WalkReport) -> String {
        let probe = report.probe
        return "walk \(report.topology.name): \(probe.proto.rawValue) from \(probe.from) \(probe.source)"
            + (probe.proto == .icmp ? "" : ":\(probe.sourcePort)") + " → \(probe.targetText)"
            + (report.established ? WalkReport.establishedNote : "")
    }

    /// Nodes in the order the probe met them.
    static func participants(_ path: ProbePath) -> [String] {
        var seen: [String] = []
        for hop in path.hops {
            for node in [hop.sender.node, hop.receiver.node] where !seen.contains(node) { seen.append(node) }
        }
        return seen
    }

    /// One hop in a line: its number and what changed there (the first hop
    /// of a chain, which changed nothing yet, shows its addresses), and
    /// `fast path:` after the number when the sender's fast path sent it.
    static func label(_ hop: Hop) -> String {
        let number = "\(hop.number)." + (hop.path == .fast ? " fast path:" : "")
        let changed = HopField.allCases.filter { hop.changed.contains($0) }
        guard !changed.isEmpty else {
            let ip = hop.fields.ip.map { " \($0.source) → \($0.destination)" } ?? ""
            return number + ip + (hop.previous == nil ? "" : " (unchanged)")
        }
        func text(_ field: HopField) -> String {
            // A MAC by the interface that owns it, where one does: shorter, and what a reader looks for.
            let owner = field == .srcMAC ? hop.sourceMACOwner : field == .dstMAC ? hop.destinationMACOwner : nil
            return owner ?? hop.value(field) ?? "-"
        }
        return number + " " + changed.map { "\($0.rawValue) \(text($0))" }.joined(separator: ", ")
    }

    // MARK: SVG: the topology with the path on it

    static let requestColour = "#1f6feb", replyColour = "#1a7f37"

    static func fill(_ kind: NodeKind) -> String {
        switch kind {
        case .host: "#f6f8fa"
        case .switch: "#fff8c5"
        case .router: "#ddf4ff"
        case .director: "#ffebe9"
        }
    }

    /// Columns by link distance from `origin` (or the first node), nodes
    /// not reached last; within a column, nodes near their neighbours in
    /// the column before (one barycentre pass), else in file order.
    static func layout(_ topology: ResolvedTopology, origin: String?) -> [String: (column: Int, row: Int)] {
        var neighbours: [String: [String]] = [:]
        for link in topology.links {
            neighbours[link.a.node, default: []].append(link.b.node)
            neighbours[link.b.node, default: []].append(link.a.node)
        }
        var depth: [String: Int] = [:]
        let start = origin.flatMap { o in topology.nodes.first { $0.name == o }?.name } ?? topology.nodes.first?.name
        var queue: [String] = start.map { [$0] } ?? []
        if let start { depth[start] = 0 }
        var i = 0
        while i < queue.count {
            let node = queue[i]
            i += 1
            for n in neighbours[node] ?? [] where depth[n] == nil {
                depth[n] = depth[node]! + 1
                queue.append(n)
            }
        }
        let last = (depth.values.max() ?? -1) + 1
        var columns: [[String]] = Array(repeating: [], count: last + 1)
        for node in topology.nodes { columns[depth[node.name] ?? last].append(node.name) }
        var place: [String: (column: Int, row: Int)] = [:]
        for (c, column) in columns.enumerated() {
            let order = column.enumerated().map { (index, node) -> (Double, Int, String) in
                let rows = (neighbours[node] ?? []).compactMap { n in place[n].flatMap { $0.column == c - 1 ? Double($0.row) : nil } }
                return (rows.isEmpty ? Double(index) : rows.reduce(0, +) / Double(rows.count), index, node)
            }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            for (row, item) in order.enumerated() { place[item.2] = (c, row) }
        }
        return place
    }

    /// The topology (every node and link) with the probe's hops drawn over
    /// their links, numbered, request and reply in their own colours.
    public static func topologySVG(_ topology: ResolvedTopology, path: ProbePath, origin: String?) -> String {
        let place = layout(topology, origin: origin)
        let columnWidth = 250.0, rowHeight = 80.0, boxWidth = 132.0, boxHeight = 42.0, margin = 24.0
        let columns = (place.values.map(\.column).max() ?? 0) + 1
        let rows = (place.values.map(\.row).max() ?? 0) + 1
        let width = margin * 2 + Double(columns - 1) * columnWidth + boxWidth
        let height = margin * 2 + Double(rows - 1) * rowHeight + boxHeight + 20
        func centre(_ node: String) -> (Double, Double) {
            let p = place[node] ?? (0, 0)
            return (margin + Double(p.column) * columnWidth + boxWidth / 2, margin + Double(p.row) * rowHeight + boxHeight / 2)
        }
        var svg = svgOpen(width: width, height: height, label: "topology \(topology.name) with the probe's path")
        svg += "<g class=\"links\" stroke=\"#afb8c1\" stroke-width=\"1.5\">\n"
        for link in topology.links {
            let (x1, y1) = centre(link.a.node), (x2, y2) = centre(link.b.node)
            svg += "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\"><title>\(Markup.escape(ObservationReader.linkName(link)))</title></line>\n"
        }
        svg += "</g>\n<g class=\"path\">\n"
        // Each hop over its link, shifted sideways by direction so a request
        // and its reply on one link both show; its number in a disc on the
        // part of the link between the boxes, the hops of one link spread along it.
        var hopsOnLink: [Int: [Int]] = [:]
        for hop in path.hops { hopsOnLink[hop.link, default: []].append(hop.number) }
        var labels = ""
        for hop in path.hops {
            // Geometry along the link as written (a → b), whichever way the
            // hop went, so the sides and label slots of a link's hops differ.
            let link = topology.links[hop.link]
            let (x1, y1) = centre(link.a.node), (x2, y2) = centre(link.b.node)
            let (ux, uy) = (x2 - x1, y2 - y1)
            let length = max((ux * ux + uy * uy).squareRoot(), 1)
            let shift = hop.direction == .request ? -4.0 : 4.0
            let (dx, dy) = (-uy / length * shift, ux / length * shift)
            let colour = hop.direction == .request ? requestColour : replyColour
            svg += "<line x1=\"\(n(x1 + dx))\" y1=\"\(n(y1 + dy))\" x2=\"\(n(x2 + dx))\" y2=\"\(n(y2 + dy))\" stroke=\"\(colour)\" stroke-width=\"3\" opacity=\"0.8\"/>\n"
            // Where the line leaves the sender's box and enters the receiver's.
            let inside = min(abs(ux) > 0 ? boxWidth / 2 / abs(ux) : 1, abs(uy) > 0 ? boxHeight / 2 / abs(uy) : 1)
            let onLink = hopsOnLink[hop.link] ?? [hop.number]
            let k = Double((onLink.firstIndex(of: hop.number) ?? 0) + 1)
            let t = inside + (1 - 2 * inside) * k / Double(onLink.count + 1)
            let (lx, ly) = (x1 + ux * t + dx * 2, y1 + uy * t + dy * 2)
            labels += "<circle cx=\"\(n(lx))\" cy=\"\(n(ly))\" r=\"9\" fill=\"\(colour)\"/>"
            labels += "<text x=\"\(n(lx))\" y=\"\(n(ly + 3.5))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#ffffff\">\(hop.number)</text>\n"
        }
        svg += labels
        svg += "</g>\n<g class=\"nodes\" font-size=\"12\">\n"
        let onPath = Set(participants(path))
        for node in topology.nodes {
            let (cx, cy) = centre(node.name)
            let stroke = onPath.contains(node.name) ? "#24292f" : "#8c959f"
            svg += "<rect x=\"\(n(cx - boxWidth / 2))\" y=\"\(n(cy - boxHeight / 2))\" width=\"\(n(boxWidth))\" height=\"\(n(boxHeight))\" rx=\"6\" fill=\"\(fill(node.kind))\" stroke=\"\(stroke)\" stroke-width=\"\(onPath.contains(node.name) ? 2 : 1)\"/>"
            svg += "<text x=\"\(n(cx))\" y=\"\(n(cy - 2))\" text-anchor=\"middle\" font-weight=\"600\">\(Markup.escape(node.name))</text>"
            svg += "<text x=\"\(n(cx))\" y=\"\(n(cy + 13))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#57606a\">\(node.kind.rawValue)</text>\n"
        }
        svg += "</g>\n"
        svg += legend(x: margin, y: height - 8)
        return svg + "</svg>\n"
    }

    static func legend(x: Double, y: Double) -> String {
        "<g class=\"legend\" font-size=\"11\"><line x1=\"\(n(x))\" y1=\"\(n(y - 4))\" x2=\"\(n(x + 24))\" y2=\"\(n(y - 4))\" stroke=\"\(requestColour)\" stroke-width=\"3\"/>"
            + "<text x=\"\(n(x + 30))\" y=\"\(n(y))\">request</text>"
            + "<line x1=\"\(n(x + 90))\" y1=\"\(n(y - 4))\" x2=\"\(n(x + 114))\" y2=\"\(n(y - 4))\" stroke=\"\(replyColour)\" stroke-width=\"3\"/>"
            + "<text x=\"\(n(x + 120))\" y=\"\(n(y))\">reply</text></g>\n"
    }

    // MARK: SVG: the ladder

    /// A ladder (sequence) diagram: a lifeline per node the probe crossed,
    /// an arrow per hop with its number and what changed.
    public static func ladderSVG(_ path: ProbePath) -> String {
        let nodes = participants(path)
        let spacing = 170.0, rowHeight = 40.0, top = 48.0, margin = 30.0
        func x(_ node: String) -> Double { margin + 60 + Double(nodes.firstIndex(of: node) ?? 0) * spacing }
        // Wide enough for the lifelines and for each label (about 6 px a character at 10 px).
        let labelsEnd = path.hops.map { min(x($0.sender.node), x($0.receiver.node)) + 6 + Double(label($0).count) * 6 }.max() ?? 0
        let width = max(margin * 2 + Double(max(nodes.count - 1, 0)) * spacing + 120, labelsEnd + margin)
        let height = top + Double(path.hops.count) * rowHeight + 30
        var svg = svgOpen(width: width, height: height, label: "ladder of the probe's hops")
        svg += "<defs>"
        for (name, colour) in [("req", requestColour), ("rep", replyColour)] {
            svg += "<marker id=\"arrow-\(name)\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"\(colour)\"/></marker>"
        }
        svg += "</defs>\n"
        for node in nodes {
            svg += "<text x=\"\(n(x(node)))\" y=\"20\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"600\">\(Markup.escape(node))</text>"
            svg += "<line x1=\"\(n(x(node)))\" y1=\"28\" x2=\"\(n(x(node)))\" y2=\"\(n(height - 10))\" stroke=\"#d0d7de\" stroke-dasharray=\"4 3\"/>\n"
        }
        for (i, hop) in path.hops.enumerated() {
            let y = top + Double(i) * rowHeight + 16
            let (x1, x2) = (x(hop.sender.node), x(hop.receiver.node))
            let request = hop.direction == .request
            let colour = request ? requestColour : replyColour
            svg += "<line x1=\"\(n(x1))\" y1=\"\(n(y))\" x2=\"\(n(x2))\" y2=\"\(n(y))\" stroke=\"\(colour)\" stroke-width=\"2\"\(request ? "" : " stroke-dasharray=\"6 3\"") marker-end=\"url(#arrow-\(request ? "req" : "rep"))\"/>"
            svg += "<text x=\"\(n(min(x1, x2) + 6))\" y=\"\(n(y - 5))\" font-size=\"10\" fill=\"#24292f\">\(Markup.escape(label(hop)))</text>\n"
        }
        return svg + "</svg>\n"
    }

    // MARK: SVG helpers

    static func svgOpen(width: Double, height: Double, label: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"\(Markup.escape(label))\">\n"
    }

    /// A coordinate with at most one decimal.
    static func n(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// One standalone SVG: the topology above the ladder (`walk --svg`).
    public static func standaloneSVG(_ report: WalkReport) -> String {
        let topology = topologySVG(report.topology, path: report.path, origin: report.probe.from)
        let ladder = ladderSVG(report.path)
        func size(_ svg: String, _ attribute: String) -> Double {
            guard let r = svg.range(of: " \(attribute)=\"") else { return 0 }
            return Double(svg[r.upperBound...].prefix { $0 != "\"" }) ?? 0
        }
        let heading = 28.0
        let width = max(size(topology, "width"), size(ladder, "width"))
        let height = heading + size(topology, "height") + size(ladder, "height")
        var svg = svgOpen(width: width, height: height, label: title(report))
        svg += "<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"600\">\(Markup.escape(title(report)))</text>\n"
        svg += "<g transform=\"translate(0 \(n(heading)))\">\(topology)</g>\n"
        svg += "<g transform=\"translate(0 \(n(heading + size(topology, "height"))))\">\(ladder)</g>\n"
        return svg + "</svg>\n"
    }
}

/// Escaping for HTML, SVG and XML text and attributes.
public enum Markup {
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters.
                if c.value < 0x20 && c != "\n" && c != "\t" && c != "\r" { out += "?" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}
