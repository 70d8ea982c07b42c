// Golden walks: for every example topology and every `send` check in it,
// the text, the pcapng and the picture (SVG) of `wirelab walk FILE --from …
// --to … --proto … --sim`, committed under Captures/golden/ so a reader (and the docs) can
// see what each hop does without running anything. `wirelab golden`
// regenerates them; a test regenerates them in memory and fails on any
// byte of difference.
import Foundation
import Topology
import Wire

/// One golden walk: a `send` check of a topology file, walked in the
/// simulator with the seeded probe of `walk --sim`.
public struct GoldenWalk: Sendable {
    /// The topology file, as given (e.g. `Topologies/lvs-dr.yaml`).
    public var topologyFile: String
    /// The `send` check it walks.
    public var check: String
    /// `<topology file stem>--<check slug>`; the files are `<base>.txt`, `<base>.pcapng` and `<base>.svg`.
    public var baseName: String
    /// The command that prints `text` (and writes `pcapng` with `--pcap`).
    public var command: String
    /// Exactly what `walk --sim` prints.
    public var text: String
    /// Exactly what `walk --sim --pcap` writes.
    public var pcapng: [UInt8]
    public var report: WalkReport

    public var textFile: String { baseName + ".txt" }
    public var pcapngFile: String { baseName + ".pcapng" }
    public var svgFile: String { baseName + ".svg" }
    /// Exactly what `walk --sim --svg` writes.
    public var svg: String { report.svg() }

    /// The names of the walk's files.
    public var fileNames: [String] { [textFile, pcapngFile, svgFile] }

    /// Every file of the walk: name, bytes, and how to show a difference as a line.
    var files: [(name: String, bytes: [UInt8], render: ([UInt8]) -> String)] {
        let asText = { (b: [UInt8]) in String(decoding: b, as: UTF8.self) }
        return [(textFile, Array(text.utf8), asText), (pcapngFile, pcapng, GoldenWalks.describePcapNG),
                (svgFile, Array(svg.utf8), asText)]
    }
}

public enum GoldenWalks {
    /// Where the golden files live, relative to the repository.
    public static let directory = "Captures/golden"
    /// Where the example topologies live, relative to the repository.
    public static let topologies = "Topologies"

    /// A file-name-safe form of a check name: lower case, apostrophes
    /// dropped, runs of anything but ASCII letters and digits become one `-`, at most 60 characters, cut at
    /// a word boundary.
    public static func slug(_ name: String) -> String {
        var out = ""
        for ch in name.lowercased().unicodeScalars {
            if ch == "'" || ch == "’" { continue }   // "real's" → "reals"
            if ch.isASCII, CharacterSet.alphanumerics.contains(ch) {
                out.unicodeScalars.append(ch)
            } else if !out.isEmpty, out.last != "-" {
                out.append("-")
            }
        }
        while out.last == "-" { out.removeLast() }
        if out.count > 60 {
            out = String(out.prefix(60))
            if let cut = out.lastIndex(of: "-") { out = String(out[..<cut]) }
        }
        return out.isEmpty ? "check" : out
    }

    /// The golden walks of one topology file, in the order of its checks.
    /// `displayPath` is how the file is named in each walk's command.
    public static func walks(topologyAt path: String, displayPath: String? = nil) throws -> [GoldenWalk] {
        let shown = displayPath ?? path
        let topology = try TopologyLoader.load(path: path)
        let stem = ((shown as NSString).lastPathComponent as NSString).deletingPathExtension
        var out: [GoldenWalk] = []
        var used: Set<String> = []
        for check in topology.checks {
            guard case let .send(send, _) = check.kind else { continue }
            var base = "\(stem)--\(slug(check.name))"
            var n = 2
            while used.contains(base) { base = "\(stem)--\(slug(check.name))-\(n)"; n += 1 }
            used.insert(base)
            let backend = try SimBackend(topology: topology)
            let report = try WalkReport.run(backend: backend, from: send.from, to: send.to, port: send.port, proto: send.proto,
                                            random: SeededRandom(seed: WalkReport.simulatorSeed))
            let target = send.port.map { "\(send.to):\($0)" } ?? send.to.description
            let command = "wirelab walk \(shown) --from \(send.from) --to \(target) --proto \(send.proto.rawValue) --sim"
            out.append(GoldenWalk(topologyFile: shown, check: check.name, baseName: base, command: command,
                                  text: report.text(), pcapng: report.pcapng(), report: report))
        }
        return out
    }

    /// Every golden walk of every `Topologies/*.yaml` under `repository`,
    /// files in name order.
    public static func all(repository: String) throws -> [GoldenWalk] {
        let dir = (repository as NSString).appendingPathComponent(topologies)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        var out: [GoldenWalk] = []
        for f in files {
            do {
                out += try walks(topologyAt: (dir as NSString).appendingPathComponent(f), displayPath: "\(topologies)/\(f)")
            } catch {
                throw LabError("golden walks of \(topologies)/\(f): \(error)")
            }
        }
        return out
    }

    /// One difference between a committed golden file and its regeneration.
    public struct Difference: Sendable, CustomStringConvertible {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    /// Compares `walks` with the files in `directory` (absolute, or relative
    /// to the current directory): every file must exist and match byte for
    /// byte, and no other golden file may be there.
    public static func compare(_ walks: [GoldenWalk], directory: String) -> [Difference] {
        var out: [Difference] = []
        var expected: Set<String> = []
        for w in walks {
            for (name, bytes, render) in w.files {
                expected.insert(name)
                let path = (directory as NSString).appendingPathComponent(name)
                let shown = "\(GoldenWalks.directory)/\(name)"
                guard let data = FileManager.default.contents(atPath: path) else {
                    out.append(Difference(file: shown, message: "missing (walk: \(w.command))"))
                    continue
                }
                let committed = [UInt8](data)
                if committed == bytes { continue }
                out.append(Difference(file: shown, message: firstDifference(committed: render(committed), regenerated: render(bytes),
                                                                            committedBytes: committed, regeneratedBytes: bytes)))
            }
        }
        let present = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in present.sorted() where isGoldenFile(name) && !expected.contains(name) {
            out.append(Difference(file: "\(GoldenWalks.directory)/\(name)", message: "no send check produces it any more (stale)"))
        }
        return out
    }

    static func firstDifference(committed: String, regenerated: String, committedBytes: [UInt8], regeneratedBytes: [UInt8]) -> String {
        let a = committed.split(separator: "\n", omittingEmptySubsequences: false)
        let b = regenerated.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? String(a[i]) : "<end of file>"
            let y = i < b.count ? String(b[i]) : "<end of file>"
            if x != y {
                return "differs at line \(i + 1)\n  committed:   \(x)\n  regenerated: \(y)"
            }
        }
        let common = min(committedBytes.count, regeneratedBytes.count)
        let offset = (0..<common).first { committedBytes[$0] != regeneratedBytes[$0] } ?? common
        return "differs at byte \(offset) (committed \(committedBytes.count) bytes, regenerated \(regeneratedBytes.count))"
    }

    /// A line-per-fact text form of a pcapng (section, interfaces, then
    /// each frame: interface, timestamp, length, comments, bytes in hex),
    /// so a difference can be shown as a line.
    public static func describePcapNG(_ bytes: [UInt8]) -> String {
        let capture: PcapNGCapture
        do { capture = try PcapNGCapture(parsing: bytes) } catch { return "unreadable pcapng: \(error)" }
        var lines: [String] = []
        for s in capture.sections {
            lines.append("section: application \(s.application ?? "-"), comments \(s.comments)")
        }
        for (i, f) in capture.interfaces.enumerated() {
            lines.append("interface \(i): \(f.name ?? "-"), link type \(f.linkType.rawValue), resolution \(f.timestampResolution)")
        }
        for (i, p) in capture.packets.enumerated() {
            let name = p.interface < capture.interfaces.count ? capture.interfaces[p.interface].name ?? "-" : "?"
            lines.append("frame \(i + 1): interface \(p.interface) (\(name)), time \(p.timestamp.map(String.init) ?? "-") ns, \(p.bytes.count) of \(p.originalLength) bytes")
            for c in p.comments { lines.append("frame \(i + 1) comment: \(c.replacingOccurrences(of: "\n", with: " | "))") }
            lines.append("frame \(i + 1) bytes: " + p.bytes.map { String(format: "%02x", $0) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    static func isGoldenFile(_ name: String) -> Bool {
        name.hasSuffix(".txt") || name.hasSuffix(".pcapng") || name.hasSuffix(".svg")
    }

    /// Writes every walk's files into `directory` and removes golden files
    /// no walk produces any more. Returns the names written.
    @discardableResult
    public static func write(_ walks: [GoldenWalk], directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        for w in walks {
            for file in w.files {
                try Data(file.bytes).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(file.name)))
                written.append(file.name)
            }
        }
        let keep = Set(written)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where isGoldenFile(name) && !keep.contains(name) {
            try FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
        return written
    }
}

/// The docs quote golden walks verbatim: a line `<!-- golden: NAME.txt -->`
/// followed by a fenced ```text block holding exactly Captures/golden/NAME.txt,
/// and right after the block the walk's picture (`picture(for:)`, the golden
/// NAME.svg). `wirelab golden` refreshes both; a test checks they match.
public enum GoldenQuotes {
    public struct Quote: Sendable {
        /// The golden file named (e.g. `lvs-dr--dr-rewrites-only-the-macs.txt`).
        public var file: String
        /// 1-based line of the marker.
        public var line: Int
        /// The text inside the fence (with its final newline), nil if the
        /// marker is not followed by a ```text fence that closes.
        public var quoted: String?
        /// Line ranges (0-based, half-open) of the block's body, to replace.
        var body: Range<Int>?
        var fenceLine: Int?
        /// The line after the closing fence, as written (nil: none, or no fence).
        public var lineAfter: String?
    }

    static let prefix = "<!-- golden: "
    static let suffix = " -->"

    /// The Markdown line that shows golden walk `file`'s picture (docs/ sits beside Captures/).
    public static func picture(for file: String) -> String {
        let base = file.hasSuffix(".txt") ? String(file.dropLast(4)) : file
        return "![the walk drawn: the path on the topology, then hop by hop](../\(GoldenWalks.directory)/\(base).svg)"
    }

    static func isPicture(_ line: String?) -> Bool {
        line.map { $0.hasPrefix("![") && $0.contains("(../\(GoldenWalks.directory)/") } ?? false
    }

    public static func quotes(in markdown: String) -> [Quote] {
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var out: [Quote] = []
        for (i, l) in lines.enumerated() {
            let t = l.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix(prefix), t.hasSuffix(suffix) else { continue }
            let name = String(t.dropFirst(prefix.count).dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            var q = Quote(file: name, line: i + 1, quoted: nil)
            if i + 1 < lines.count, lines[i + 1] == "```text",
               let end = lines[(i + 2)...].firstIndex(where: { $0 == "```" }) {
                q.body = (i + 2)..<end
                q.fenceLine = i + 1
                q.quoted = lines[(i + 2)..<end].map { $0 + "\n" }.joined()
                q.lineAfter = end + 1 < lines.count ? lines[end + 1] : nil
            }
            out.append(q)
        }
        return out
    }

    /// `markdown` with every quoted block replaced by `golden(name)`'s text
    /// (a missing fence is added). Unknown names are left as they are.
    public static func refresh(_ markdown: String, golden: (String) -> String?) -> String {
        var lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for q in quotes(in: markdown).reversed() {
            guard let text = golden(q.file) else { continue }
            var body = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if body.last == "" { body.removeLast() }
            if let range = q.body {
                // The picture line first: it sits below the block being replaced.
                if isPicture(q.lineAfter) {
                    lines[range.upperBound + 1] = picture(for: q.file)
                } else {
                    lines.insert(picture(for: q.file), at: range.upperBound + 1)
                }
                lines.replaceSubrange(range, with: body)
            } else {
                lines.insert(contentsOf: ["```text"] + body + ["```", picture(for: q.file)], at: q.line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension GoldenQuotes {
    /// Every quote in `docs/*.md` under `docsDirectory` that does not hold
    /// exactly its golden text (`golden(name)`), or names no golden walk.
    public static func differences(docsDirectory: String, golden: (String) -> String?) -> [GoldenWalks.Difference] {
        var out: [GoldenWalks.Difference] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: docsDirectory)) ?? []).filter { $0.hasSuffix(".md") }.sorted()
        for name in names {
            guard let text = try? String(contentsOfFile: (docsDirectory as NSString).appendingPathComponent(name), encoding: .utf8) else { continue }
            for q in quotes(in: text) {
                let at = "docs/\(name):\(q.line)"
                guard let want = golden(q.file) else {
                    out.append(.init(file: at, message: "quotes \(q.file), which is not a golden walk"))
                    continue
                }
                guard let got = q.quoted else {
                    out.append(.init(file: at, message: "the marker for \(q.file) is not followed by a ```text block"))
                    continue
                }
                if q.lineAfter != picture(for: q.file) {
                    out.append(.init(file: at, message: "the block quoting \(q.file) is not followed by its picture line: \(picture(for: q.file))"))
                }
                if got != want {
                    out.append(.init(file: at, message: "the walk quoted differs from \(GoldenWalks.directory)/\(q.file): "
                                     + GoldenWalks.firstDifference(committed: got, regenerated: want,
                                                                   committedBytes: Array(got.utf8), regeneratedBytes: Array(want.utf8))))
                }
            }
        }
        return out
    }
}
