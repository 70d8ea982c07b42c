import Foundation
import Testing

/// `walk --established` on a live lab whose router has the fast path on:
/// a later packet of the flow leaves r1 by r1's fast path (both ways),
/// where a plain walk (the flow's first packet) shows every hop slow.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct FastPathWalkLiveTests {
    /// h1 — r1 — h2, h2 echoing UDP on 9000, r1 with the fast path.
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: true }
        nodes:
          h1: { kind: host, interfaces: { eth0: { ip: 10.0.1.2/24 } }, routes: [ "default via 10.0.1.1" ] }
          r1:
            kind: router
            datapath: afxdp
            fastpath: true
            interfaces: { eth0: { ip: 10.0.1.1/24 }, eth1: { ip: 10.0.2.1/24 } }
          h2: { kind: host, interfaces: { eth0: { ip: 10.0.2.2/24 } }, routes: [ "default via 10.0.2.1" ], serve: { udp-echo: 9000 } }
        links:
          - [ h1:eth0, r1:eth0 ]
          - [ r1:eth1, h2:eth0 ]
        """
    }

    /// `walk --json` of the lab: its exit status and each hop's (sender, path).
    static func walk(_ file: String, _ extra: [String]) throws -> (status: Int32, hops: [(sender: String, path: String)], output: String) {
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let r = try Harness.run(Harness.wirelab, ["walk", file, "--from", "h1", "--to", "10.0.2.2:9000", "--proto", "udp", "--json",
                                                  "--captures", dir + "/Captures"] + extra, timeout: 120, directory: dir)
        let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        let hops = (json?["hops"] as? [[String: Any]] ?? []).map { ($0["sender"] as? String ?? "?", $0["path"] as? String ?? "?") }
        return (r.status, hops, r.combined)
    }

    @Test func aLaterPacketOfTheFlowLeavesTheRouterByItsFastPath() throws {
        let lab = Harness.lab("wlfw")
        let file = try Harness.topologyFile(Self.topology(lab))
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }

        // The flow's first packet: every node decides, nothing is fast.
        let first = try Self.walk(file, [])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.hops.count == 4 && first.hops.allSatisfy { $0.path == "slow" }, "\(first.hops)")

        // A later one: r1 repeats its decision in the kernel, both ways.
        let second = try Self.walk(file, ["--established"])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.hops.map(\.sender) == ["h1:eth0", "r1:eth1", "h2:eth0", "r1:eth0"], "\(second.output)")
        #expect(second.hops.map(\.path) == ["slow", "fast", "slow", "fast"], "\(second.output)")
    }
}
