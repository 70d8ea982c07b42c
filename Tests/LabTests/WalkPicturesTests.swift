// Pictures of walks and checks: the Mermaid of every golden walk follows
// the sequence-diagram grammar, every SVG is well-formed and draws every
// hop, and the HTML pages open in a real headless Chromium with no console
// error and every hop's and verdict's text in the rendered DOM. No root.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Topology
import Wire
@testable import Lab

/// Headless Chromium, as the project's install script puts it there.
enum Chromium {
    static let path: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The rendered DOM of `file`, and the console messages the page logged.
    static func render(_ file: String) throws -> (dom: String, console: [String]) {
        let r = try Harness.run(path!, ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                                        "--dump-dom", URL(fileURLWithPath: file).absoluteString], timeout: 90)
        #expect(r.status == 0, "chromium: \(r.stderr.suffix(2000))")
        let console = r.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        return (r.stdout, console)
    }

    /// Text as Chromium serialises a text node: only `&`, `<` and `>` escaped.
    static func domText(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The lines of Mermaid's sequenceDiagram grammar that `walk --format
/// mermaid` writes, checked as Mermaid's parser reads them: a message or
/// note ends at `;`, and `#` may only open an entity (`#59;`).
enum MermaidSequenceGrammar {
    static func errors(_ source: String) -> [String] {
        var errors: [String] = []
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.first == "sequenceDiagram" else { return ["line 1: not `sequenceDiagram`"] }
        var participants: Set<String> = []
        let id = "[A-Za-z_][A-Za-z0-9_]*"
        func text(_ s: Substring, _ n: Int) {
            let bare = s.replacing(/#[A-Za-z0-9]+;/, with: "")
            if bare.contains("#") || bare.contains(";") { errors.append("line \(n): `#` or `;` outside an entity in \"\(s)\"") }
            if s.trimmingCharacters(in: .whitespaces).isEmpty { errors.append("line \(n): empty text") }
        }
        for (i, line) in lines.enumerated().dropFirst() {
            let n = i + 1
            if line.isEmpty { if i == lines.count - 1 { continue }; errors.append("line \(n): empty line inside"); continue }
            if line.wholeMatch(of: /\ {4}%%.*/) != nil { continue }
            if let m = line.wholeMatch(of: try! Regex("    participant (\(id)) as (.+)")) {
                let name = String(m.output[1].substring!)
                if ["end", "participant", "actor", "Note", "loop", "alt", "else", "opt", "par", "rect"].contains(name) {
                    errors.append("line \(n): `\(name)` is a keyword")
                }
                participants.insert(name)
                text(m.output[2].substring!, n)
                continue
            }
            if let m = line.wholeMatch(of: try! Regex("    Note over (\(id))(?:,(\(id)))?: (.+)")) {
                for k in [1, 2] { if let p = m.output[k].substring, !participants.contains(String(p)) { errors.append("line \(n): \(p) undeclared") } }
                text(m.output[3].substring!, n)
                continue
            }
            if let m = line.wholeMatch(of: try! Regex("    (\(id))(->>|-->>)(\(id)): (.+)")) {
                for k in [1, 3] { if let p = m.output[k].substring, !participants.contains(String(p)) { errors.append("line \(n): \(p) undeclared") } }
                text(m.output[4].substring!, n)
                continue
            }
            errors.append("line \(n): not a sequenceDiagram statement: \(line)")
        }
        return errors
    }
}

@Suite struct WalkPicturesTests {
    static let walks = GoldenWalkTests.walks

    @Test func theMermaidOfEveryGoldenWalkFollowsTheGrammarWithAnArrowPerHop() {
        #expect(!Self.walks.isEmpty)
        for w in Self.walks {
            let source = w.report.mermaid()
            #expect(MermaidSequenceGrammar.errors(source) == [], "\(w.baseName):\n\(source)")
            let arrows = source.split(separator: "\n").filter { $0.contains("->>") }
            #expect(arrows.count == w.report.path.hops.count, "\(w.baseName)")
            for (arrow, hop) in zip(arrows, w.report.path.hops) {
                #expect(arrow.contains(": \(hop.number)."), "\(w.baseName): \(arrow)")
                #expect(arrow.contains("-->>") == (hop.direction == .reply), "\(w.baseName): \(arrow)")
            }
        }
    }

    /// The grammar check is not a rubber stamp: what Mermaid would refuse, it refuses.
    @Test func theGrammarCheckRefusesWhatMermaidWould() {
        let good = "sequenceDiagram\n    participant p0 as a\n    participant p1 as b\n    p0->>p1: 1. ttl 63\n"
        #expect(MermaidSequenceGrammar.errors(good) == [])
        #expect(!MermaidSequenceGrammar.errors(good.replacingOccurrences(of: "ttl 63", with: "ttl 63; oops")).isEmpty)
        #expect(!MermaidSequenceGrammar.errors(good.replacingOccurrences(of: "ttl 63", with: "port #80")).isEmpty)
        #expect(!MermaidSequenceGrammar.errors(good.replacingOccurrences(of: "p0->>p1", with: "p0->>p9")).isEmpty)
        #expect(!MermaidSequenceGrammar.errors(good.replacingOccurrences(of: "sequenceDiagram", with: "flowchart LR")).isEmpty)
        #expect(MermaidSequenceGrammar.errors(good.replacingOccurrences(of: "ttl 63", with: "a#59;b")) == [])
        // And the walk's own escaping makes such text safe.
        #expect(WalkPictures.mermaidText("a;b#c") == "a#59;b#35;c")
    }

    /// Every golden walk's SVG parses as XML and draws one numbered disc
    /// per hop; its `aria-label` names the walk.
    @Test func everyGoldenSVGIsWellFormedAndNumbersEveryHop() throws {
        final class Collector: NSObject, XMLParserDelegate {
            var discs: [String] = []
            var inText = false
            var text = ""
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "text" { inText = true; text = "" }
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { text += string } }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if name == "text" { inText = false; if Int(text) != nil { discs.append(text) } }
            }
        }
        for w in Self.walks {
            let data = try Data(contentsOf: Repository.goldenDirectory.appendingPathComponent(w.svgFile))
            let parser = XMLParser(data: data)
            let collector = Collector()
            parser.delegate = collector
            #expect(parser.parse(), "\(w.svgFile): \(parser.parserError.map { "\($0)" } ?? "")")
            let numbers = Set(collector.discs.compactMap(Int.init))
            #expect(numbers.isSuperset(of: w.report.path.hops.map(\.number)), "\(w.svgFile): discs \(numbers.sorted())")
        }
    }

    /// `walk --sim --format mermaid --html --svg --pcap`: Mermaid on stdout,
    /// and the page names the pcapng and holds no link to anything outside it.
    @Test func theWalkCommandWritesEveryPicture() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-walk-pictures-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = dir.appendingPathComponent("walk.html").path, svg = dir.appendingPathComponent("walk.svg").path
        let pcap = dir.appendingPathComponent("walk.pcapng").path
        let r = try Harness.run(Harness.wirelab, ["walk", Repository.root.appendingPathComponent("Topologies/lvs-nat.yaml").path,
                                                  "--sim", "--from", "client", "--to", "198.51.100.3:80", "--format", "mermaid",
                                                  "--html", html, "--svg", svg, "--pcap", pcap], timeout: 60)
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.hasPrefix("sequenceDiagram\n"), "\(r.stdout)")
        #expect(MermaidSequenceGrammar.errors(r.stdout) == [], "\(r.stdout)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains(pcap))
        #expect(!page.contains("src=") && !page.contains("href=") && !page.contains("<script"), "the page must be self-contained")
        #expect(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<svg "))

        let both = try Harness.run(Harness.wirelab, ["walk", Repository.root.appendingPathComponent("Topologies/lvs-nat.yaml").path,
                                                     "--sim", "--from", "client", "--to", "198.51.100.3:80", "--json", "--format", "mermaid"],
                                   timeout: 60)
        #expect(both.status != 0 && both.stderr.contains("--json and --format mermaid"), "\(both.combined)")
    }

    // MARK: In a real browser

    /// The console detector sees a page's console errors (so "no console
    /// error" below means something).
    @Test(.enabled(if: Chromium.path != nil, "needs chromium (scripts/install-deps.sh installs it)"))
    func theConsoleDetectorSeesAnError() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wl-console-\(UUID().uuidString).html")
        defer { try? FileManager.default.removeItem(at: file) }
        try "<!DOCTYPE html><html><body><p>x</p><script>console.error('deliberate')</script></body></html>"
            .write(to: file, atomically: true, encoding: .utf8)
        let (dom, console) = try Chromium.render(file.path)
        #expect(dom.contains("<p>x</p>"))
        #expect(console.contains { $0.contains("deliberate") }, "\(console)")
    }

    /// The DR lesson's walk page: no console error, and every hop's reason
    /// and fields in the DOM Chromium rendered.
    @Test(.enabled(if: Chromium.path != nil, "needs chromium (scripts/install-deps.sh installs it)"))
    func theDRLessonWalkPageRendersInChromium() throws {
        let walk = try #require(Self.walks.first { $0.baseName == "lvs-dr-classic--the-five-steps-of-the-dr-lesson" })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wl-walk-\(UUID().uuidString).html")
        defer { try? FileManager.default.removeItem(at: file) }
        try walk.report.html(pcapng: walk.pcapngFile).write(to: file, atomically: true, encoding: .utf8)
        let (dom, console) = try Chromium.render(file.path)
        #expect(console == [], "\(console)")
        #expect(dom.contains(Chromium.domText(walk.pcapngFile)))
        for hop in walk.report.path.hops {
            #expect(dom.contains(Chromium.domText(hop.reason)), "hop \(hop.number): \(hop.reason)")
            #expect(dom.contains("id=\"hop-\(hop.number)\""))
            #expect(dom.contains(Chromium.domText(WalkPictures.label(hop))), "hop \(hop.number)'s ladder label")
            for field in [HopField.srcIP, .dstIP, .ttl] { if let v = hop.value(field) { #expect(dom.contains(v)) } }
        }
    }

    /// `sim --html` with a check that fails: the page shows every verdict,
    /// the evidence, the failing hop's expected and seen values, and the
    /// probe's path; Chromium renders it without a console error.
    @Test(.enabled(if: Chromium.path != nil, "needs chromium (scripts/install-deps.sh installs it)"))
    func aFailingCheckPageRendersInChromium() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-check-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let topology = Repository.root.appendingPathComponent("docs/pictures/lvs-dr-wrong-expectation.yaml").path
        let page = dir.appendingPathComponent("check.html").path
        let r = try Harness.run(Harness.wirelab, ["sim", topology, "--capture", dir.path, "--html", page], timeout: 120)
        #expect(r.status == 1, "one check is wrong on purpose: \(r.combined)")
        let (dom, console) = try Chromium.render(page)
        #expect(console == [], "\(console)")
        #expect(dom.contains("FAIL") && dom.contains("PASS"))
        #expect(dom.contains("Evidence: the captures of every link"))
        #expect(dom.contains("Evidence: what the sending host"))
        // The wrong expectation: the real's address where DR keeps the VIP.
        #expect(dom.contains("10.0.0.1") && dom.contains("10.0.0.100"))
        #expect(dom.contains("expected vs seen"))
        #expect(dom.contains("id=\"hop-1\""))
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("FAIL") || line.hasPrefix("PASS") {
            let name = line.split(separator: "  ")[1].trimmingCharacters(in: .whitespaces)
            #expect(dom.contains(Chromium.domText(String(name))), "verdict of \(name)")
        }
    }
}
