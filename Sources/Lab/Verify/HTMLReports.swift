// One self-contained page per walk (`walk --html`) and per check run
// (`check --html`, `sim --html`): inline CSS and SVG, no script, nothing
// fetched — the file a CI job uploads and anyone can open offline.
import Topology
import Wire

enum HTMLPage {
    static let style = """
    body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px;color:#24292f;max-width:1400px}
    h1{font-size:20px}h2{font-size:16px;margin-top:28px}h3{font-size:14px}
    table{border-collapse:collapse;font-size:12px;margin:8px 0}
    th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
    th{background:#f6f8fa}td.changed{background:#fff8c5;font-weight:600}
    tr.reply td.dir{color:#1a7f37}tr.request td.dir{color:#1f6feb}
    code,td.mono{font-family:"DejaVu Sans Mono",monospace}
    .pass{border-left:6px solid #1a7f37}.fail{border-left:6px solid #cf222e}.error{border-left:6px solid #9a6700}.inconclusive{border-left:6px solid #8250df}
    section.check{padding:4px 12px;margin:16px 0;background:#fdfdfd}
    .verdict{font-weight:700}.pass .verdict{color:#1a7f37}.fail .verdict{color:#cf222e}.error .verdict{color:#9a6700}.inconclusive .verdict{color:#8250df}
    .picture{overflow-x:auto}tr.failed td{border-top:2px solid #cf222e;border-bottom:2px solid #cf222e}tr.failed td:first-child{color:#cf222e;font-weight:700}
    """

    static func document(title: String, body: String) -> String {
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>\(Markup.escape(title))</title>\n"
            + "<style>\n\(style)\n</style>\n</head>\n<body>\n\(body)</body>\n</html>\n"
    }

    /// The hop table: per hop its frame's fields, changed ones marked, and
    /// why; the hop a check failed at (`failed`) stands out.
    static func hopTable(_ path: ProbePath, failed: Int? = nil) -> String {
        let columns: [(String, [HopField])] = [
            ("src mac", [.srcMAC]), ("dst mac", [.dstMAC]), ("vlan", [.vlan]), ("src ip", [.srcIP]), ("dst ip", [.dstIP]),
            ("proto", [.proto]), ("src port", [.srcPort]), ("dst port", [.dstPort]), ("ttl", [.ttl]),
            ("encapsulation (inner src → dst)", [.innerSrcIP, .innerDstIP]),
        ]
        var out = "<table class=\"hops\">\n<tr><th>#</th><th>dir</th><th>from → to</th>"
        out += columns.map { "<th>\(Markup.escape($0.0))</th>" }.joined() + "<th>why</th></tr>\n"
        for hop in path.hops {
            let direction = hop.direction == .request ? "request" : "reply"
            let failedHere = hop.number == failed
            out += "<tr class=\"\(direction)\(failedHere ? " failed" : "")\" id=\"hop-\(hop.number)\"><td>\(hop.number)\(failedHere ? " ✗" : "")</td><td class=\"dir\">\(direction)</td>"
            out += "<td>\(Markup.escape("\(hop.sender.node) (\(hop.interfacesText)) → \(hop.receiver)"))</td>"
            for (_, fields) in columns {
                let values = fields.compactMap { hop.macText($0) ?? hop.value($0) }
                let changed = fields.contains { hop.changed.contains($0) }
                let text = values.isEmpty ? "–" : values.joined(separator: " → ") + (changed ? " *" : "")
                out += "<td class=\"mono\(changed ? " changed" : "")\">\(Markup.escape(text))</td>"
            }
            out += "<td>\(Markup.escape(hop.reason))</td></tr>\n"
        }
        return out + "</table>\n<p>* = changed at this hop</p>\n"
    }

    /// The path on the topology, the ladder and the hop table.
    static func walkSections(topology: ResolvedTopology, path: ProbePath, origin: String?, level: Int, failed: Int? = nil) -> String {
        guard !path.hops.isEmpty else { return "<p>The probe was not seen on any link.</p>\n" }
        var out = "<h\(level)>The path on the topology</h\(level)>\n<div class=\"picture\">"
        out += WalkPictures.topologySVG(topology, path: path, origin: origin) + "</div>\n"
        out += "<h\(level)>Hop by hop</h\(level)>\n<div class=\"picture\">" + WalkPictures.ladderSVG(path) + "</div>\n"
        out += hopTable(path, failed: failed)
        if path.reply.isEmpty { out += "<p>No reply was seen.</p>\n" }
        return out
    }
}

extension WalkReport {
    /// The walk as one page; `pcapng` names the walk's capture, if written.
    public func html(pcapng: String? = nil) -> String {
        let title = WalkPictures.title(self)
        var body = "<h1>\(Markup.escape(title))</h1>\n"
        if let pcapng { body += "<p>The walk's frames: <code>\(Markup.escape(pcapng))</code> (open in Wireshark; each frame is commented with its hop and why).</p>\n" }
        body += HTMLPage.walkSections(topology: topology, path: path, origin: probe.from, level: 2)
        return HTMLPage.document(title: title, body: body)
    }

    /// The walk as Mermaid source (`walk --format mermaid`).
    public func mermaid() -> String { WalkPictures.mermaid(self) }

    /// The walk as one SVG: the topology with the path, then the ladder.
    public func svg() -> String { WalkPictures.standaloneSVG(self) }
}

extension CheckReport {
    /// The run as one page: every check's verdict, its evidence, the
    /// failing hop's fields expected vs seen, and the probe's path.
    public func html(topology: ResolvedTopology) -> String {
        let title = "wirelab \(verb) \(file) (lab \(lab))"
        var body = "<h1>\(Markup.escape(title))</h1>\n"
        body += "<p class=\"summary\">\(Markup.escape(countsLine))</p>\n"
        if let labError { body += "<section class=\"check error\"><p><span class=\"verdict\">ERROR</span> the lab: \(Markup.escape(labError))</p></section>\n" }
        for (index, o) in outcomes.enumerated() {
            let verdict: String
            switch o.status {
            case .pass: verdict = "PASS"
            case .fail: verdict = "FAIL"
            case .inconclusive: verdict = "INCONCLUSIVE"
            case .error: verdict = "ERROR"
            }
            body += "<section class=\"check \(o.status.rawValue)\" id=\"check-\(index + 1)\">\n"
            body += "<h2><span class=\"verdict\">\(verdict)</span> \(Markup.escape(o.name))</h2>\n"
            body += "<p>\(Markup.escape(o.kind)) check at \(Markup.escape(o.location)), \(String(format: "%.1f", o.seconds)) s</p>\n"
            body += "<p class=\"found\">\(Markup.escape(o.summary))</p>\n"
            if !o.evidence.isEmpty {
                body += "<p class=\"evidence\">Evidence: \(Markup.escape(o.evidence.map(\.explanation).joined(separator: "; ")))</p>\n"
            }
            if !o.details.isEmpty {
                body += "<pre>\(Markup.escape(o.details.joined(separator: "\n")))</pre>\n"
            }
            if !o.mismatches.isEmpty {
                body += "<h3>Hop \(o.failedHop.map { String($0.number) } ?? "?") of the probe: expected vs seen</h3>\n"
                body += "<table class=\"mismatches\"><tr><th>field</th><th>expected</th><th>seen</th><th>changed at</th></tr>\n"
                for m in o.mismatches {
                    let seen = m.seen + (m.seenOwner.map { " (\($0))" } ?? "")
                    let at = m.changedAtHop.map { "hop \($0)" + (m.changedBy.map { " by \($0)" } ?? "") } ?? "–"
                    body += "<tr><td>\(Markup.escape(m.field))</td><td class=\"mono\">\(Markup.escape(m.expected))</td>"
                    body += "<td class=\"mono changed\">\(Markup.escape(seen))</td><td>\(Markup.escape(at))</td></tr>\n"
                }
                body += "</table>\n"
            }
            if let path = o.path {
                let origin = path.hops.first.map { path.origin(of: $0).sender.node }
                body += HTMLPage.walkSections(topology: topology, path: path, origin: origin, level: 3, failed: o.failedHop?.number)
            }
            if let capture = o.capture { body += "<p>Capture: <code>\(Markup.escape(capture))</code></p>\n" }
            body += "</section>\n"
        }
        return HTMLPage.document(title: title, body: body)
    }
}
