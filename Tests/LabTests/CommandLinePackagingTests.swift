// What wirelab ships beside its verbs, from the built binary (no root):
// `--version` and the man page (docs/man/wirelab.1).
import Foundation
import Testing
import WirelabCommands

@Suite struct CommandLinePackagingTests {
    /// The verbs `wirelab --help` lists, as the binary describes itself
    /// (hidden ones, `daemon` and `golden`, left out).
    static func visibleVerbs() throws -> [String] {
        let dump = try Harness.wl("--experimental-dump-help")
        let json = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        let command = json?["command"] as? [String: Any]
        let verbs = (command?["subcommands"] as? [[String: Any]] ?? [])
            .filter { $0["shouldDisplay"] as? Bool ?? true }
            .compactMap { $0["commandName"] as? String }
        return verbs
    }

    static func which(_ name: String) -> String? {
        ["/usr/bin", "/bin", "/usr/local/bin"].map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func versionPrintsTheVersionAndExitsZero() throws {
        let r = try Harness.wl("--version")
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == WirelabVersion.number + "\n")
        #expect(r.stderr.isEmpty)
        #expect(WirelabVersion.number.split(separator: ".").count == 3)
    }

    @Test func theVerbsAreKnown() throws {
        let verbs = try Self.visibleVerbs()
        for verb in ["up", "down", "status", "exec", "check", "walk", "sim", "graph", "lvs", "bench", "serve"] {
            #expect(verbs.contains(verb), "\(verbs)")
        }
        #expect(!verbs.contains("daemon"))
    }

    @Test func theCommittedManPageIsNotStale() throws {
        let r = try Harness.run("/bin/bash", [Repository.root.appendingPathComponent("scripts/gen-manpage.sh").path,
                                              "--check", "--wirelab", Harness.wirelab])
        #expect(r.status == 0, "\(r.combined)")
    }

    @Test func theManPageNamesEveryVerb() throws {
        let page = try String(contentsOf: Repository.root.appendingPathComponent("docs/man/wirelab.1"), encoding: .utf8)
        #expect(page.contains(".Dt WIRELAB 1"))
        for verb in try Self.visibleVerbs() {
            #expect(page.contains(".It Em \(verb)\n"), "the man page has no entry for \(verb)")
        }
    }

    @Test(.enabled(if: which("groff") != nil, "needs groff (groff-base, installed by scripts/install-deps.sh)"))
    func theManPageFormatsWithoutWarnings() throws {
        let page = Repository.root.appendingPathComponent("docs/man/wirelab.1").path
        let r = try Harness.run(Self.which("groff")!, ["-mandoc", "-Tutf8", "-ww", "-z", page])
        #expect(r.status == 0 && r.combined.isEmpty, "groff: \(r.combined)")
        if let man = Self.which("man") {
            let m = try Harness.run(man, ["--warnings", "-l", page])
            #expect(m.status == 0 && m.stderr.isEmpty, "man --warnings: \(m.stderr)")
            #expect(m.stdout.contains("wirelab"))
        }
    }
}
