import Foundation
import Testing

/// `Topologies/bond.yaml` live: r1's bond0 over two switches; the active
/// member's link is cut under load and healed. The bond fails over (and
/// back) in well under a second: no request fails, no stream is lost.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct BondLiveDrillTests {
    @Test func theActiveMembersLinkIsCutAndHealed() throws {
        let lab = Harness.lab("wlbd")
        let text = try String(contentsOf: Repository.root.appendingPathComponent("Topologies/bond.yaml"), encoding: .utf8)
        let yaml = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .map { $0.hasPrefix("name: ") ? "name: \(lab)" : $0 }.joined(separator: "\n")
        let file = try Harness.topologyFile(yaml)
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file, "--json"], timeout: 180)
        let drill = try HAPair.report(r.stdout)
        let windows = try #require(drill["windows"] as? [HAPair.JSON], "\(r.combined)")
        #expect(windows.map { $0["event"] as? String } == ["start", "fail r1:eth0", "heal r1:eth0"])
        for w in windows.dropFirst() {
            let gap = try #require(w["interruption"] as? Double, "\(w)")
            #expect(gap < 1, "\(w)")
            #expect(!(w["answeredAfter"] as? [String] ?? []).isEmpty, "answers went on: \(w)")
        }
        #expect(drill["failedRequests"] as? Int == 0, "\(drill)")
        #expect(drill["streams"] as? Int == 4)
        #expect(drill["streamsLost"] as? Int == 0, "\(drill)")
        #expect(drill["status"] as? String == "pass", "\(drill)")
        #expect(r.status == 0, "\(r.combined)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "drill takes the lab down")
    }
}
