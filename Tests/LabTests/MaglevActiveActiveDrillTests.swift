import Foundation
import Testing

/// `Topologies/lb-ecmp-maglev.yaml` live: three directors announce one VIP
/// over BGP (BFD 50 ms × 3), the router spreads flows over them by ECMP,
/// and `mh` with `mh-port` makes them all pick the same real for a flow.
/// One director loses power under load. With `sloppy`, the flows the
/// router moves to the other two continue on their reals without sync:
/// fewer than 1/3 of the long-lived connections are lost (the goal;
/// here none). Without `sloppy` the survivors drop those flows' packets
/// (no entry, no SYN): the lost ones are the dead director's share.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct MaglevActiveActiveDrillTests {
    /// Streams in the test's load: with 24 spread over three directors, the
    /// chance that none was on the failed one is (2/3)^24 ≈ 0.006 %.
    static let streams = 24

    static func topology(lab: String, sloppy: Bool) throws -> String {
        let text = try String(contentsOf: Repository.root.appendingPathComponent("Topologies/lb-ecmp-maglev.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { sloppy || $0.trimmingCharacters(in: .whitespaces) != "sloppy: true" }
            .map { $0.hasPrefix("name: ") ? "name: \(lab)" : $0 }
            .map { $0.replacingOccurrences(of: "streams: 12,", with: "streams: \(streams),") }
        #expect(lines.contains { $0.contains("streams: \(streams),") }, "the example's drill has 12 streams")
        #expect(sloppy == lines.contains { $0.contains("sloppy: true") })
        return lines.joined(separator: "\n")
    }

    @Test(arguments: [true, false]) func oneOfThreeDirectorsLosesPower(sloppy: Bool) throws {
        let lab = Harness.lab(sloppy ? "wlmas" : "wlman")
        let file = try Harness.topologyFile(try Self.topology(lab: lab, sloppy: sloppy))
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file, "--json"], timeout: 240)
        let drill = try HAPair.report(r.stdout)
        let windows = try #require(drill["windows"] as? [HAPair.JSON], "\(r.combined)")
        #expect(windows.map { $0["event"] as? String } == ["start", "fail lvs2", "heal lvs2"])
        let fail = windows[1]
        // BFD takes lvs2 out of the router's ECMP group within 150 ms; the
        // clients on the other directors never stop, and the gap stays short.
        let gap = try #require(fail["interruption"] as? Double, "\(fail)")
        #expect(gap < 1, "\(fail)")
        let lost = try #require(drill["streamsLost"] as? Int)
        #expect(drill["streams"] as? Int == Self.streams)
        if sloppy {
            #expect(lost * 3 < Self.streams, "fewer than 1/3 lost with Maglev and sloppy: \(lost)")
            #expect(r.status == 0, "\(r.combined)")
        } else {
            // The dead director's share, and no more than its share and a bit.
            #expect(lost >= 1 && lost * 2 < Self.streams, "without sloppy the moved flows are lost: \(lost)")
        }
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "drill takes the lab down")
    }
}
