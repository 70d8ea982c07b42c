import Foundation
import Testing
import Topology

/// Capture loss on a real lab: `status` shows every capture point with its
/// loss counters (zero as zero), and a `check` whose capture ring overflows
/// on purpose (a one-page ring drained every 2 s, and 40 HTTP requests in
/// the checks' window) reports the `send` check inconclusive, naming where
/// frames were lost, and exits 3 — never pass, never fail.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct CaptureLossLabEndToEndTests {
    static func yaml(lab: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: afxdp, capture: true }
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 10.0.1.2/24 } }, routes: [ "default via 10.0.1.1" ] }
          r1: { kind: router, interfaces: { eth0: { ip: 10.0.1.1/24 }, eth1: { ip: 10.0.2.1/24 } } }
          server:
            kind: host
            interfaces: { eth0: { ip: 10.0.2.2/24 } }
            routes: [ "default via 10.0.2.1" ]
            serve: { http: 80 }
        links:
          - [ client:eth0, r1:eth0 ]
          - [ r1:eth1, server:eth0 ]
        checks:
          - name: traffic that fills r1's capture ring
            http: { from: client, url: "http://10.0.2.2/", count: 40 }
          - name: r1 routes the SYN
            send: { from: client, to: "10.0.2.2:80", proto: tcp }
            expect:
              - { at: server:eth0, src-mac: r1:eth1, ttl: 63 }
        """
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func statusShowsEveryCapturePointAndItsLoss() throws {
        let lab = Harness.lab("wlcls")
        let file = try Harness.topologyFile(Self.yaml(lab: lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 120, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        let ping = try Harness.wl("exec", "--lab", lab, "client", "--", "ping", "-c", "2", "-i", "0.2", "10.0.2.2")
        #expect(ping.status == 0, "\(ping.combined)")
        let status = try Harness.wl("status", lab, "--json")
        let datapath = Self.json(status.stdout)["datapath"] as? [String: Any] ?? [:]
        let points = datapath["capturePoints"] as? [[String: Any]] ?? []
        // r1's XDP ring records both of its ends; libpcap the two hosts' ends.
        let ring = points.first { $0["method"] as? String == "xdp-ring" }
        #expect(ring?["node"] as? String == "r1" && (ring?["ends"] as? [Any])?.count == 2, "\(points)")
        #expect(ring?["ringDropped"] as? Int == 0 && ring?["errors"] as? Int == 0, "\(points)")
        #expect(((ring?["recorded"] as? Int) ?? 0) >= 4, "\(points)")
        let pcaps = points.filter { $0["method"] as? String == "libpcap" }
        #expect(Set(pcaps.compactMap { ($0["ends"] as? [[String: Any]])?.first?["end"] as? String }) == ["client:eth0", "server:eth0"], "\(points)")
        #expect(pcaps.allSatisfy { $0["ringDropped"] as? Int == 0 && $0["interfaceDropped"] as? Int == 0 }, "\(points)")
        let text = try Harness.wl("status", lab)
        #expect(text.stdout.contains("LOST: RING FULL") && text.stdout.contains("xdp ring of r1 *")
                && text.stdout.contains("no frames lost by the capture"), "\(text.stdout)")
    }

    @Test func aFullCaptureRingMakesTheSendCheckInconclusive() throws {
        let lab = Harness.lab("wlclf")
        let file = try Harness.topologyFile(Self.yaml(lab: lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let junit = dir + "/report.xml"
        // The daemon inherits these: one page of ring per node, drained every 2 s.
        let r = try Harness.run("/usr/bin/env", ["WIRELAB_CAPTURE_RING_BYTES=4096", "WIRELAB_CAPTURE_DRAIN_MS=2000",
                                                 Harness.wirelab, "check", file, "--json", "--junit", junit],
                                timeout: 240, directory: dir)
        #expect(r.status == 3, "exit \(r.status): \(r.combined)")
        let report = Self.json(r.stdout)
        let checks = report["checks"] as? [[String: Any]] ?? []
        try #require(checks.count == 2, "\(r.combined)")
        // The HTTP check rests on sockets: it stands.
        #expect(checks[0]["status"] as? String == "pass", "\(checks[0])")
        // The send check rests on the capture: neither pass nor fail.
        #expect(checks[1]["status"] as? String == "inconclusive", "\(checks[1])")
        let summary = checks[1]["summary"] as? String ?? ""
        #expect(summary.hasPrefix("inconclusive: the capture lost ") && summary.contains("the XDP capture ring of r1 (")
                && summary.contains("ring full"), "\(summary)")
        #expect(report["inconclusive"] as? Int == 1 && report["failed"] as? Int == 0 && report["ok"] as? Bool == false)
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("<skipped message=\"inconclusive: the capture lost ") && !xml.contains("<failure"), "\(xml)")
        // The final counters stay beside the capture.
        let counters = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/Captures/\(lab)/capture-counters.json"))
        let points = (try JSONSerialization.jsonObject(with: counters)) as? [[String: Any]] ?? []
        #expect(points.contains { $0["node"] as? String == "r1" && ($0["ringDropped"] as? Int ?? 0) > 0 }, "\(points)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
    }
}
