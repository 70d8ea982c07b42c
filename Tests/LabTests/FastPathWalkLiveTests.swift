import Foundation
import Testing
import Topology

/// `walk --established` on a live lab whose router has the fast path on:
/// the flow's second packet leaves r1 by r1's fast path (both ways), where
/// a plain walk (the flow's first packet) shows every hop slow.
///
/// Root, and the lab lock: `flock /tmp/wirelab-live.lock swift test
/// --skip-build --filter FastPathWalkLiveTests`. Skips, saying why, while
/// the topology loader does not take `fastpath: true` (the daemon's fast
/// path is being wired in parallel).
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct FastPathWalkLiveTests {
    /// h1 — r1 — h2, h2 echoing UDP on 9000; FASTPATH is where `fastpath: true` goes.
    static func topology(_ lab: String, _ fastpath: Placement) -> String {
        """
        name: \(lab)
        \(fastpath == .topLevel ? "fastpath: true\n" : "")defaults: { capture: true\(fastpath == .defaults ? ", fastpath: true" : "") }
        nodes:
          h1: { kind: host, interfaces: { eth0: { ip: 10.0.1.2/24 } }, routes: [ "default via 10.0.1.1" ] }
          r1:
            kind: router
            datapath: afxdp\(fastpath == .node ? "\n    fastpath: true" : "")
            interfaces: { eth0: { ip: 10.0.1.1/24 }, eth1: { ip: 10.0.2.1/24 } }
          h2: { kind: host, interfaces: { eth0: { ip: 10.0.2.2/24 } }, routes: [ "default via 10.0.2.1" ], serve: { udp-echo: 9000 } }
        links:
          - [ h1:eth0, r1:eth0 ]
          - [ r1:eth1, h2:eth0 ]
        """
    }

    /// Where the topology takes the key: on the node, in `defaults`, or at the top.
    enum Placement: CaseIterable { case node, defaults, topLevel }

    /// `walk --json` of the lab: its exit status and each hop's (sender, path).
    static func walk(_ file: String, _ extra: [String]) throws -> (status: Int32, hops: [(sender: String, path: String)], output: String) {
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let r = try Harness.run(Harness.wirelab, ["walk", file, "--from", "h1", "--to", "10.0.2.2:9000", "--proto", "udp", "--json",
                                                  "--captures", dir + "/Captures"] + extra, timeout: 120, directory: dir)
        let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        let hops = (json?["hops"] as? [[String: Any]] ?? []).map { ($0["sender"] as? String ?? "?", $0["path"] as? String ?? "?") }
        return (r.status, hops, r.combined)
    }

    @Test func theFlowsSecondPacketLeavesTheRouterByItsFastPath() throws {
        let lab = Harness.lab("wlfw")
        var refusals: [String] = []
        var chosen: String?
        for placement in Placement.allCases {
            let yaml = Self.topology(lab, placement)
            do {
                _ = try TopologyLoader.load(yaml: yaml, file: "fastpath.yaml")
                chosen = yaml
                break
            } catch {
                refusals.append("\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)")
            }
        }
        guard let yaml = chosen else {
            let reason = "skipped: the topology loader takes no `fastpath: true` yet — " + refusals.joined(separator: "; ")
            print(reason)
            try Test.cancel(Comment(rawValue: reason))
        }
        let file = try Harness.topologyFile(yaml)
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }

        // The flow's first packet: every node decides, nothing is fast.
        let first = try Self.walk(file, [])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.hops.count == 4 && first.hops.allSatisfy { $0.path == "slow" }, "\(first.hops)")

        // Its second: r1 repeats its decision in the kernel, both ways.
        let second = try Self.walk(file, ["--established"])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.hops.map(\.sender) == ["h1:eth0", "r1:eth1", "h2:eth0", "r1:eth0"], "\(second.output)")
        #expect(second.hops.map(\.path) == ["slow", "fast", "slow", "fast"], "\(second.output)")
    }
}
