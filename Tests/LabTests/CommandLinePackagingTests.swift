// What wirelab ships beside its verbs: `--version`, shell completions, the
// man page (docs/man/wirelab.1) and scripts/install-completions.sh. All from
// the built binary, no root needed.
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

    static var temporaryDirectory: String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-pkg-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
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
        for verb in ["up", "down", "status", "exec", "check", "walk", "sim", "graph", "plan", "lvs", "bench", "serve", "fail", "heal", "drill"] {
            #expect(verbs.contains(verb), "\(verbs)")
        }
        #expect(!verbs.contains("daemon") && !verbs.contains("drill-load"))
    }

    /// `plan` needs no root and writes nothing: the table, JSON, exit 2 on a bad file.
    @Test func planPrintsTheCapacityAndRefusesABadFile() throws {
        let file = Repository.root.appendingPathComponent("Topologies/lb-200g.yaml").path
        let r = try Harness.wl("plan", file)
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains("system               200G"))
        let j = try Harness.wl("plan", file, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        #expect(object?["system"] as? Double == 200e9)
        let broken = Repository.root.appendingPathComponent("Tests/TopologyTests/Fixtures/broken/55-capacity-values.yaml").path
        let b = try Harness.wl("plan", broken)
        #expect(b.status == 2)
        #expect(b.stderr.contains("55-capacity-values.yaml:7:22: error: nic capacity '100' is not a rate"))
        let small = try Harness.wl("plan", file, "--packet-size", "10")
        #expect(small.status != 0 && small.stderr.contains("--packet-size"))
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsNameEveryVerb(_ shell: String) throws {
        let r = try Harness.wl("--generate-completion-script", shell)
        #expect(r.status == 0, "\(r.combined)")
        for verb in try Self.visibleVerbs() {
            let listed = switch shell {
            case "bash": r.stdout.contains("compgen -W '") && r.stdout.range(of: "compgen -W '[^']*\\b\(verb)\\b", options: .regularExpression) != nil
            case "zsh": r.stdout.contains("'\(verb):")
            default: r.stdout.contains("-fa '\(verb)'")
            }
            #expect(listed, "the \(shell) script does not offer \(verb)")
        }
        // A syntax check by the shell itself, where it is installed.
        if let program = Self.which(shell) {
            let file = Self.temporaryDirectory + "/wirelab.\(shell)"
            try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try Harness.run(program, shell == "fish" ? ["--no-execute", file] : ["-n", file])
            #expect(check.status == 0 && check.combined.isEmpty, "\(shell) -n: \(check.combined)")
        } else {
            #expect(shell != "bash", "bash is needed to check the bash script")
        }
    }

    /// bash itself, given `wirelab <TAB>`, offers every verb.
    @Test func bashCompletesTheVerbs() throws {
        let script = Self.temporaryDirectory + "/wirelab.bash"
        try Harness.wl("--generate-completion-script", "bash").stdout.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try Harness.run("/bin/bash", ["-c", """
            source "$1"
            COMP_WORDS=(wirelab ""); COMP_CWORD=1; COMP_LINE="wirelab "; COMP_POINT=${#COMP_LINE}
            _wirelab wirelab "" wirelab
            printf '%s\\n' "${COMPREPLY[@]}"
            """, "bash", script])
        #expect(r.status == 0, "\(r.combined)")
        let offered = Set(r.stdout.split(separator: "\n").map(String.init))
        let verbs = try Self.visibleVerbs()
        #expect(Set(verbs).isSubset(of: offered), "offered \(offered.sorted()), verbs \(verbs)")
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

    @Test func installScriptPutsEverythingUnderThePrefixAndSaysWhere() throws {
        let prefix = Self.temporaryDirectory + "/prefix"
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let r = try Harness.run("/bin/bash", [Repository.root.appendingPathComponent("scripts/install-completions.sh").path,
                                              "--prefix", prefix, "--wirelab", Harness.wirelab])
        #expect(r.status == 0, "\(r.combined)")
        let expected = [("bash", "share/bash-completion/completions/wirelab"), ("zsh", "share/zsh/site-functions/_wirelab"),
                        ("fish", "share/fish/vendor_completions.d/wirelab.fish"), ("man", "share/man/man1/wirelab.1")]
        for (kind, relative) in expected {
            let path = "\(prefix)/\(relative)"
            #expect(r.stdout.contains(path), "the script does not say where the \(kind) file went: \(r.stdout)")
            let installed = try String(contentsOfFile: path, encoding: .utf8)
            let want = kind == "man"
                ? try String(contentsOf: Repository.root.appendingPathComponent("docs/man/wirelab.1"), encoding: .utf8)
                : try Harness.wl("--generate-completion-script", kind).stdout
            #expect(installed == want, "\(path) is not what it should hold")
        }
    }

    @Test func installScriptRefusesADirectoryItCannotWrite() throws {
        let prefix = Self.temporaryDirectory
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let blocker = prefix + "/share"
        try Data().write(to: URL(fileURLWithPath: blocker))  // a file where a directory must go
        let r = try Harness.run("/bin/bash", [Repository.root.appendingPathComponent("scripts/install-completions.sh").path,
                                              "--prefix", prefix, "--wirelab", Harness.wirelab])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot write to") && r.stderr.contains("nothing installed"), "\(r.combined)")
    }
}
