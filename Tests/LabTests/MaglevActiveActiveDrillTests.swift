import Foundation
import Testing

/// `Topologies/lb-ecmp-maglev.yaml` live: three directors, each on both
/// switches, announce one VIP over BGP to two routers (BFD 50 ms × 3), the
/// routers spread flows over them by ECMP, and `mh` with `mh-port` makes
/// them all pick the same real for a flow. The first drill fails in turn a
/// director and a router's link to a switch under load, moving flows
/// between directors. With `sloppy`, the moved flows continue
/// on their reals without sync: fewer than 1/3 of the long-lived
/// connections are lost (the goal; here none). Without `sloppy`
/// the directors a flow moves to drop its packets (no entry, no SYN): the
/// lost ones are the moved flows. The second drill fails a router, a
/// switch and a real: the connections lost are the dead reals' own.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct MaglevActiveActiveDrillTests {
    /// Streams in the test's load: with 24 spread over three directors, the
    /// chance that none was on the failed one is (2/3)^24 ≈ 0.006 %.
    static let streams = 24
    static let moves = "a director and a router's link fail in turn"
    static let losses = "a router, a switch and a real server fail in turn"

    static func topology(lab: String, sloppy: Bool) throws -> String {
        let text = try String(contentsOf: Repository.root.appendingPathComponent("Topologies/lb-ecmp-maglev.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { sloppy || $0.trimmingCharacters(in: .whitespaces) != "sloppy: true" }
            .map { $0.hasPrefix("name: ") ? "name: \(lab)" : $0 }
            .map { $0.replacingOccurrences(of: "streams: 12,", with: "streams: \(streams),") }
        #expect(lines.filter { $0.contains("streams: \(streams),") }.count == 2, "the example's drills have 12 streams")
        #expect(sloppy == lines.contains { $0.contains("sloppy: true") })
        return lines.joined(separator: "\n")
    }

    static func drill(_ name: String, lab: String, sloppy: Bool) throws -> (report: HAPair.JSON, status: Int32, output: String) {
        let file = try Harness.topologyFile(try Self.topology(lab: lab, sloppy: sloppy))
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file, name, "--json"], timeout: 300)
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "drill takes the lab down")
        return (try HAPair.report(r.stdout), r.status, r.combined)
    }

    @Test(arguments: [true, false]) func aDirectorAndARoutersLinkFailInTurn(sloppy: Bool) throws {
        let (drill, status, output) = try Self.drill(Self.moves, lab: Harness.lab(sloppy ? "wlmas" : "wlman"), sloppy: sloppy)
        let windows = try #require(drill["windows"] as? [HAPair.JSON], "\(output)")
        #expect(windows.map { $0["event"] as? String }
            == ["start", "fail lvs2", "heal lvs2", "fail r1:eth1", "heal r1:eth1"])
        // BFD takes lvs2 (and r1's paths over sw1) out of the routers' ECMP
        // groups within 150 ms, VRRP moves the reals' gateway in 0.35 s: no
        // gap reaches 1 s. (Without `sloppy`, requests in flight on flows
        // that move die too: a group growing back one session at a time
        // moves flows each time; there only the director's window is held
        // to it.)
        for w in sloppy ? windows : [windows[1]] {
            let gap = try #require(w["interruption"] as? Double, "\(w)")
            #expect(gap < 1, "\(w)")
        }
        let lost = try #require(drill["streamsLost"] as? Int)
        #expect(drill["streams"] as? Int == Self.streams)
        if sloppy {
            #expect(lost * 3 < Self.streams, "fewer than 1/3 lost with Maglev and sloppy: \(lost)")
            #expect(status == 0, "\(output)")
        } else {
            // The moved flows are lost: lvs2's share at least, and every
            // flow the routers' hash moves to another director when the
            // group shrinks (ECMP is hash mod N: how many move varies).
            #expect(lost >= 1, "without sloppy the moved flows are lost: \(lost)")
            let director = try #require(windows[1]["streamsLost"] as? Int)
            #expect(director >= 1, "lvs2's share at least: \(director)")
        }
    }

    @Test func aRouterASwitchAndARealFailInTurn() throws {
        let (drill, status, output) = try Self.drill(Self.losses, lab: Harness.lab("wlmaw"), sloppy: true)
        let windows = try #require(drill["windows"] as? [HAPair.JSON], "\(output)")
        #expect(windows.map { $0["event"] as? String }
            == ["start", "fail r1", "heal r1", "fail sw1", "heal sw1", "fail rs3", "heal rs3"])
        #expect(status == 0, "\(output)")
        // Only the dead switch's reals' and the dead real's own connections;
        // none when the router dies or anything heals.
        let sw1 = try #require(windows[3]["streamsLostByServer"] as? [String: Int], "\(windows[3])")
        #expect(Set(sw1.keys).isSubset(of: ["rs1", "rs2"]), "\(sw1)")
        let rs3 = try #require(windows[5]["streamsLostByServer"] as? [String: Int], "\(windows[5])")
        #expect(Set(rs3.keys).isSubset(of: ["rs3"]), "\(rs3)")
        for w in [windows[1], windows[2], windows[4], windows[6]] { #expect(w["streamsLost"] as? Int == 0, "\(w)") }
        #expect((drill["streamsLost"] as? Int ?? 0) >= 1, "with 24 streams over four reals some were on rs1, rs2 or rs3")
        // The router's death: its requests in flight time out (500 ms),
        // sometimes two in a row; its return: the client sends to it as
        // soon as its link is back, before its BGP sessions are (a few
        // requests time out, up to 1.07 s seen). Everything else under 1 s.
        for (i, w) in windows.enumerated() {
            let gap = try #require(w["interruption"] as? Double, "\(w)")
            #expect(gap < (i == 1 || i == 2 ? 1.5 : 1), "\(w)")
        }
    }
}
