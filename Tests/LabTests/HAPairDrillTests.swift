import Foundation
import Testing

/// The `Topologies/ha-pair.yaml` drill, as the HA issue asks it to show:
/// two directors in one VRRP group (0.1 s adverts) in front of three reals;
/// the master loses power under load and comes back. A takeover interrupts
/// traffic to the VIP for under 1 s; with connection sync no long-lived
/// connection is lost, without it every one is (the standby has no entry
/// for them and drops their packets). Live (root) and on the simulator,
/// the same file and the same report.
enum HAPair {
    typealias JSON = [String: Any]

    /// The example file renamed to `lab`, with or without its `sync:` lines.
    static func topology(lab: String, sync: Bool) throws -> String {
        let text = try String(contentsOf: Repository.root.appendingPathComponent("Topologies/ha-pair.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { sync || !$0.trimmingCharacters(in: .whitespaces).hasPrefix("sync:") }
            .map { $0.hasPrefix("name: ") ? "name: \(lab)" : $0 }
        #expect(lines.contains { $0.hasPrefix("name: \(lab)") })
        #expect(sync == lines.contains { $0.contains("sync: {") }, "the example has sync on both directors")
        return lines.joined(separator: "\n")
    }

    /// The one drill's report from `drill --json`, or from `sim --json`
    /// (there beside the file's check: `{"checks":…,"drills":…}`).
    static func report(_ stdout: String) throws -> JSON {
        var root = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? JSON)
        if root["checks"] != nil { root = try #require(root["drills"] as? JSON) }
        let drills = try #require(root["drills"] as? [JSON])
        try #require(drills.count == 1)
        return drills[0]
    }

    /// What both worlds must show for the master's power cut.
    static func expectTakeover(_ drill: JSON, sync: Bool) throws {
        let windows = try #require(drill["windows"] as? [JSON])
        #expect(windows.map { $0["event"] as? String } == ["start", "fail lvs1", "heal lvs1"])
        let fail = windows[1], heal = windows[2]
        // The standby took the VIP over, and the master took it back (preempt).
        #expect(fail["takeover"] as? String == "10.0.0.100 (vrrp 17): lvs1 → lvs2", "\(fail)")
        #expect(heal["takeover"] as? String == "10.0.0.100 (vrrp 17): lvs2 → lvs1", "\(heal)")
        // Under 1 s without answers (Master_Down_Interval ≈ 0.36 s, plus the
        // 0.5 s request timeout of the requests caught in it), and more than
        // the takeover itself: the measurement sees the failure.
        let gap = try #require(fail["interruption"] as? Double)
        #expect(gap > 0.3 && gap < 1, "\(fail)")
        #expect(fail["gapEnd"] as? Double != nil, "answers came again")
        let streams = try #require(drill["streams"] as? Int)
        #expect(streams == 8)
        if sync {
            #expect(drill["streamsLost"] as? Int == 0, "sync keeps every long-lived connection: \(fail)")
            #expect(drill["status"] as? String == "pass", "\(drill)")
        } else {
            #expect(fail["streamsLost"] as? Int == streams, "without sync the standby drops them all: \(fail)")
            #expect(drill["status"] as? String == "fail", "established-lost: 0 fails: \(drill)")
        }
        // Requests go on through the new master.
        #expect(!(fail["answeredAfter"] as? [String] ?? []).isEmpty, "\(fail)")
    }
}

@Suite struct HAPairSimulatedDrillTests {
    /// docs/ha.md quotes `walk --sim --fail lvs1` after `<!-- walk --fail lvs1 -->`:
    /// the command still prints those lines, through lvs2.
    @Test func theDocsWalkAfterTheTakeoverIsWhatWalkPrints() throws {
        let doc = try String(contentsOf: Repository.root.appendingPathComponent("docs/ha.md"), encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- walk --fail lvs1 -->\n```text\n"))
        let block = doc[marker.upperBound...].prefix { _ in true }
        let quoted = String(block[..<(block.range(of: "```")?.lowerBound ?? block.endIndex)])
        #expect(quoted.contains("lvs2 (in eth0"))
        let r = try Harness.run(Harness.wirelab, ["walk", "--sim", Repository.root.appendingPathComponent("Topologies/ha-pair.yaml").path,
                                                  "--from", "client", "--to", "10.0.0.100:80", "--fail", "lvs1"])
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains(quoted), "docs/ha.md's walk after the takeover differs from:\n\(r.stdout)")
        #expect(!r.stdout.contains("lvs1 (in"), "the failed master forwards nothing")
    }

    @Test(arguments: [true, false]) func theMastersPowerCut(sync: Bool) throws {
        let file = try Harness.topologyFile(try HAPair.topology(lab: "hapair", sync: sync))
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let r = try Harness.run(Harness.wirelab, ["sim", file, "--json"], timeout: 120)
        #expect(r.status == (sync ? 0 : 1), "\(r.combined)")
        try HAPair.expectTakeover(try HAPair.report(r.stdout), sync: sync)
    }
}

@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct HAPairLiveDrillTests {
    @Test(arguments: [true, false]) func theMastersPowerCut(sync: Bool) throws {
        let lab = Harness.lab(sync ? "wlhas" : "wlhan")
        let file = try Harness.topologyFile(try HAPair.topology(lab: lab, sync: sync))
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file, "--json"], timeout: 180)
        #expect(r.status == (sync ? 0 : 1), "\(r.combined)")
        try HAPair.expectTakeover(try HAPair.report(r.stdout), sync: sync)
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "drill takes the lab down")
    }
}
