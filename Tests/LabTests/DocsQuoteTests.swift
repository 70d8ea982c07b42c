// docs/ quotes golden walks verbatim (`<!-- golden: NAME.txt -->` before a
// ```text block), so the walkthroughs cannot drift from what `walk --sim`
// prints; each director mode has its walkthrough, indexed in docs/README.md.
import Foundation
import Testing
@testable import Lab

@Suite struct DocsQuoteTests {
    static var docs: URL { Repository.root.appendingPathComponent("docs") }

    static func golden(_ name: String) -> String? {
        try? String(contentsOf: Repository.goldenDirectory.appendingPathComponent(name), encoding: .utf8)
    }

    @Test func everyQuotedWalkIsTheGoldenFile() {
        for d in GoldenQuotes.differences(docsDirectory: Self.docs.path, golden: Self.golden) {
            Issue.record("\(d)\nrefresh with: wirelab golden")
        }
    }

    @Test(arguments: ["lvs-nat", "lvs-dr", "lvs-tun", "lvs-fullnat"])
    func eachDirectorModeHasAWalkthroughQuotingItsGoldenWalk(_ mode: String) throws {
        let text = try String(contentsOf: Self.docs.appendingPathComponent("\(mode).md"), encoding: .utf8)
        let quotes = GoldenQuotes.quotes(in: text)
        #expect(quotes.contains { $0.file.hasPrefix("\(mode)--") && $0.quoted != nil }, "docs/\(mode).md quotes no golden walk of \(mode)")
        #expect(text.contains("Captures/golden/"), "docs/\(mode).md points at the pcapng")
        let index = try String(contentsOf: Self.docs.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(index.contains("(\(mode).md)"), "docs/README.md links \(mode).md")
    }

    @Test func theIndexListsEveryGoldenWalk() throws {
        let index = try String(contentsOf: Self.docs.appendingPathComponent("README.md"), encoding: .utf8)
        let walks = try GoldenWalks.all(repository: Repository.root.path)
        #expect(!walks.isEmpty)
        for w in walks {
            #expect(index.contains("(../Captures/golden/\(w.textFile))"), "docs/README.md does not link \(w.textFile)")
        }
    }

    @Test func quotesAreFoundAndRefreshed() {
        let doc = "# x\n<!-- golden: a.txt -->\n```text\nold\n```\ntail\n<!-- golden: b.txt -->\nafter\n"
        let q = GoldenQuotes.quotes(in: doc)
        #expect(q.map(\.file) == ["a.txt", "b.txt"])
        #expect(q.map(\.line) == [2, 7])
        #expect(q[0].quoted == "old\n" && q[1].quoted == nil)
        let fresh = GoldenQuotes.refresh(doc) { ["a.txt": "new 1\nnew 2\n", "b.txt": "B\n"][$0] }
        // Each block is followed by its walk's picture, added or kept in step.
        let a = GoldenQuotes.picture(for: "a.txt"), b = GoldenQuotes.picture(for: "b.txt")
        #expect(a == "![the walk drawn: the path on the topology, then hop by hop](../Captures/golden/a.svg)")
        #expect(fresh == "# x\n<!-- golden: a.txt -->\n```text\nnew 1\nnew 2\n```\n\(a)\ntail\n<!-- golden: b.txt -->\n```text\nB\n```\n\(b)\nafter\n")
        #expect(GoldenQuotes.quotes(in: fresh).map(\.quoted) == ["new 1\nnew 2\n", "B\n"])
        #expect(GoldenQuotes.quotes(in: fresh).map(\.lineAfter) == [a, b])
        // A second refresh replaces the picture line instead of adding another.
        #expect(GoldenQuotes.refresh(fresh) { ["a.txt": "new 1\nnew 2\n", "b.txt": "B\n"][$0] } == fresh)
    }
}
