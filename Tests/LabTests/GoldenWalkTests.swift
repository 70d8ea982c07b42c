// The golden walks under Captures/golden/: regenerated in memory from every
// `send` check of every Topologies/*.yaml, they must match the committed
// files byte for byte; every example has at least one; the walks pass their
// own checks' expectations; the pcapngs open in tshark with one interface
// per link. No root needed.
import Foundation
import Testing
import Topology
import Wire
@testable import Lab

enum Repository {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var goldenDirectory: URL { root.appendingPathComponent(GoldenWalks.directory) }
    static var exampleFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Topologies").path)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }
}

@Suite struct GoldenWalkTests {
    static let walks: [GoldenWalk] = (try? GoldenWalks.all(repository: Repository.root.path)) ?? []

    @Test func theCommittedGoldenWalksAreWhatTheSimulatorProducesNow() throws {
        let walks = try GoldenWalks.all(repository: Repository.root.path)
        #expect(!walks.isEmpty)
        let diffs = GoldenWalks.compare(walks, directory: Repository.goldenDirectory.path)
        for d in diffs {
            Issue.record("\(d)\nregenerate with: swift run wirelab golden (or .build/debug/wirelab golden), then review the diff")
        }
    }

    @Test func aWalkIsByteIdenticalRunToRun() throws {
        let path = Repository.root.appendingPathComponent("Topologies/lvs-nat.yaml").path
        let a = try GoldenWalks.walks(topologyAt: path), b = try GoldenWalks.walks(topologyAt: path)
        #expect(a.map(\.text) == b.map(\.text))
        #expect(a.map(\.pcapng) == b.map(\.pcapng))
    }

    @Test(arguments: Repository.exampleFiles)
    func everyExampleHasAGoldenWalkThatReachesItsTarget(_ file: String) throws {
        let mine = Self.walks.filter { $0.topologyFile == "Topologies/\(file)" }
        #expect(!mine.isEmpty, "Topologies/\(file) has no send check, so no golden walk")
        for w in mine {
            #expect(!w.report.path.request.isEmpty, "\(w.baseName): the probe was not seen")
            #expect(!w.report.path.reply.isEmpty, "\(w.baseName): no reply was seen")
            #expect(w.command.hasPrefix("wirelab walk Topologies/\(file) --from "))
        }
    }

    /// The golden walk of a check is that check's probe: its expectations
    /// hold on the walk (so the committed walks show passing checks).
    @Test func everyGoldenWalkMeetsItsChecksExpectations() throws {
        for file in Repository.exampleFiles {
            let topology = try TopologyLoader.load(path: Repository.root.appendingPathComponent("Topologies/\(file)").path)
            for check in topology.checks {
                guard case let .send(_, expect) = check.kind, case let .hops(items) = expect else { continue }
                let walk = try #require(Self.walks.first { $0.topologyFile == "Topologies/\(file)" && $0.check == check.name })
                var outcome = CheckOutcome(name: check.name, kind: "send", location: "", status: .pass, summary: "")
                CheckEngine.evaluateHops(items, path: walk.report.path, topology: topology, into: &outcome)
                #expect(outcome.status == .pass, "\(file): \(check.name): \(outcome.summary)\n\(outcome.details.joined(separator: "\n"))")
            }
        }
    }

    @Test func fileNamesAreReadableSlugs() {
        #expect(GoldenWalks.slug("DR rewrites only the MACs") == "dr-rewrites-only-the-macs")
        #expect(GoldenWalks.slug("  a -- b  ") == "a-b")
        #expect(GoldenWalks.slug("über/ß") == "ber")
        #expect(GoldenWalks.slug("!!!") == "check")
        let long = GoldenWalks.slug(String(repeating: "word ", count: 30))
        #expect(long.count <= 60 && !long.hasSuffix("-") && long.hasPrefix("word-word"))
    }

    /// A difference names the file and shows the first differing line.
    @Test func aDifferenceNamesTheFileAndTheFirstDifferingLine() throws {
        let path = Repository.root.appendingPathComponent("Topologies/two-hosts.yaml").path
        let walks = try GoldenWalks.walks(topologyAt: path, displayPath: "Topologies/two-hosts.yaml")
        let w = try #require(walks.first)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-golden-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try GoldenWalks.write(walks, directory: dir)
        #expect(GoldenWalks.compare(walks, directory: dir).isEmpty)

        var lines = w.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let changed = try #require(lines.firstIndex { $0.contains("ttl 64") })
        lines[changed] = lines[changed].replacingOccurrences(of: "ttl 64", with: "ttl 65")
        try lines.joined(separator: "\n").write(toFile: "\(dir)/\(w.textFile)", atomically: true, encoding: .utf8)
        var pcap = w.pcapng
        pcap[pcap.count - 40] ^= 0xFF
        try Data(pcap).write(to: URL(fileURLWithPath: "\(dir)/\(w.pcapngFile)"))
        try Data("old".utf8).write(to: URL(fileURLWithPath: "\(dir)/gone--stale.txt"))

        let diffs = GoldenWalks.compare(walks, directory: dir)
        #expect(diffs.count == 3)
        let text = try #require(diffs.first { $0.file.hasSuffix(w.textFile) })
        #expect(text.file == "Captures/golden/\(w.textFile)")
        #expect(text.message.contains("line \(changed + 1)\n"), "\(text.message)")
        #expect(text.message.contains("ttl 65") && text.message.contains("ttl 64"))
        let bin = try #require(diffs.first { $0.file.hasSuffix(w.pcapngFile) })
        #expect(bin.message.contains("differs at line"), "\(bin.message)")
        #expect(diffs.contains { $0.file.hasSuffix("gone--stale.txt") && $0.message.contains("stale") })

        // Writing again puts things right and removes the stale file.
        try GoldenWalks.write(walks, directory: dir)
        #expect(GoldenWalks.compare(walks, directory: dir).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/gone--stale.txt"))
    }

    /// The CLI mode: `wirelab golden --check` passes on the repository and,
    /// on a copy with one golden line changed, exits 1 naming the file and
    /// the line; `wirelab golden` on that copy puts it right.
    @Test func theGoldenCommandChecksAndRegenerates() throws {
        let ok = try Harness.run(Harness.wirelab, ["golden", "--check", "--repository", Repository.root.path], timeout: 120)
        #expect(ok.status == 0, "\(ok.combined)")
        #expect(ok.stdout.contains("golden walks"))

        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("wl-golden-repo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.createDirectory(at: copy.appendingPathComponent("Captures"), withIntermediateDirectories: true)
        for dir in ["Topologies", "docs"] {
            try FileManager.default.copyItem(at: Repository.root.appendingPathComponent(dir), to: copy.appendingPathComponent(dir))
        }
        try FileManager.default.copyItem(at: Repository.goldenDirectory, to: copy.appendingPathComponent(GoldenWalks.directory))
        let victim = copy.appendingPathComponent(GoldenWalks.directory).appendingPathComponent("switch--the-switch-forwards-unchanged.txt")
        let text = try String(contentsOf: victim, encoding: .utf8)
        try text.replacingOccurrences(of: "→ sw:p1", with: "→ sw:p9").write(to: victim, atomically: true, encoding: .utf8)

        let bad = try Harness.run(Harness.wirelab, ["golden", "--check", "--repository", copy.path], timeout: 120)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("Captures/golden/switch--the-switch-forwards-unchanged.txt: differs at line"), "\(bad.stderr)")
        #expect(bad.stderr.contains("sw:p9") && bad.stderr.contains("sw:p1"))
        // The docs quote no switch walk, so only the one file differs.
        #expect(bad.stderr.contains("1 difference(s)"), "\(bad.stderr)")

        let fix = try Harness.run(Harness.wirelab, ["golden", "--repository", copy.path], timeout: 120)
        #expect(fix.status == 0, "\(fix.combined)")
        #expect(try String(contentsOf: victim, encoding: .utf8) == text)
        let again = try Harness.run(Harness.wirelab, ["golden", "--check", "--repository", copy.path], timeout: 120)
        #expect(again.status == 0, "\(again.combined)")
    }

    /// tshark reads every committed pcapng: one frame per hop, each on the
    /// interface named after the hop's link, with the hop's comment.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark"), "needs tshark"))
    func theGoldenPcapngsOpenInTshark() throws {
        for w in Self.walks {
            let file = Repository.goldenDirectory.appendingPathComponent(w.pcapngFile).path
            let r = try Harness.run("/usr/bin/tshark", ["-r", file, "-T", "fields", "-E", "separator=|",
                                                        "-e", "frame.interface_name", "-e", "frame.comment"], timeout: 60)
            #expect(r.status == 0, "\(w.pcapngFile): \(r.stderr)")
            let rows = r.stdout.split(separator: "\n").map { $0.split(separator: "|", maxSplits: 1).map(String.init) }
            #expect(rows.count == w.report.path.hops.count, "\(w.pcapngFile)")
            for (row, hop) in zip(rows, w.report.path.hops) {
                #expect(row.first == hop.linkName, "\(w.pcapngFile) frame \(hop.number)")
                #expect(row.count == 2 && row[1].hasPrefix("rx \(hop.receiver)") && row[1].contains("hop \(hop.number) (\(hop.direction.rawValue))"),
                        "\(w.pcapngFile) frame \(hop.number): \(row)")
            }
        }
    }
}
