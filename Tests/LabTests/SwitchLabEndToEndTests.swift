import Foundation
import Testing
import Wire
import LinuxNet

/// Four kernel hosts on one learning switch whose frames cross the Swift
/// data plane, over AF_XDP and over AF_PACKET: ping, HTTP, a bounded iperf3
/// run, and the per-link captures.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct SwitchLabEndToEndTests {
    static func topology(_ lab: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: true }
        nodes:
          sw: { kind: switch }
          a: { kind: host, interfaces: { eth0: { ip: 172.30.5.1/24 } } }
          b: { kind: host, interfaces: { eth0: { ip: 172.30.5.2/24 } } }
          c: { kind: host, interfaces: { eth0: { ip: 172.30.5.3/24 } }, serve: { http: 8000 } }
          d: { kind: host, interfaces: { eth0: { ip: 172.30.5.4/24 } } }
        links:
          - [ a:eth0, sw:port-a ]
          - [ b:eth0, sw:port-b ]
          - [ c:eth0, sw:port-c ]
          - [ d:eth0, sw:port-d ]
        """
    }

    @Test(arguments: ["afxdp", "afpacket"])
    func trafficCrossesTheSwitch(datapath: String) throws {
        let lab = Harness.lab("wltsw\(datapath == "afxdp" ? "x" : "p")")
        let file = try Harness.topologyFile(Self.topology(lab, datapath: datapath))
        let captures = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: captures)
        }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 60, directory: captures)
        try #require(up.status == 0, "up: \(up.combined)")

        let ping = try Harness.wl("exec", "--lab", lab, "a", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "172.30.5.3")
        #expect(ping.status == 0, "ping a → c: \(ping.combined)")
        let curl = try Harness.wl("exec", "--lab", lab, "d", "--", "curl", "-sS", "--max-time", "5", "http://172.30.5.3:8000/")
        #expect(curl.stdout == "c\n", "curl d → c: \(curl.combined)")

        // A bounded TCP transfer: 1 s of iperf3 between b and c.
        _ = try Harness.wl("exec", "--lab", lab, "c", "--", "sh", "-c", "iperf3 -s -1 -D -p 5301 >/dev/null 2>&1 </dev/null")
        let listening = try Harness.waitUntil {
            try Harness.wl("exec", "--lab", lab, "c", "--", "ss", "-Hltn", "sport = :5301").stdout.contains("5301")
        }
        #expect(listening, "iperf3 -s listens on c:5301")
        let iperf = try Harness.wl("exec", "--lab", lab, "b", "--", "iperf3", "-c", "172.30.5.3", "-p", "5301", "-t", "1", "-J", timeout: 30)
        #expect(iperf.status == 0, "iperf3: \(iperf.combined)")
        if let json = try? JSONSerialization.jsonObject(with: Data(iperf.stdout.utf8)) as? [String: Any],
           let end = json["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
           let bytes = received["bytes"] as? Double {
            #expect(bytes > 1_000_000, "iperf3 moved \(bytes) bytes")
        } else {
            Issue.record("iperf3 gave no JSON result: \(iperf.combined)")
        }

        let status = try Harness.wl("status", lab, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let datapathStatus = json?["datapath"] as? [String: Any]
        let nodes = datapathStatus?["nodes"] as? [[String: Any]] ?? []
        let counters = nodes.first?["counters"] as? [String: Any]
        #expect((counters?["learned"] as? Int ?? 0) >= 3, "the switch learned the hosts' MACs: \(status.stdout)")

        // Down closes the captures; the a↔sw link must hold a's echo
        // requests to c and c's replies, unchanged by the switch.
        let down = try Harness.wl("down", lab)
        #expect(down.status == 0)
        let dir = "\(captures)/Captures/\(lab)"
        let aLink = try PcapReader.readAll(path: "\(dir)/a_eth0--sw_port-a.pcap")
        let cLink = try PcapReader.readAll(path: "\(dir)/c_eth0--sw_port-c.pcap")
        func parse(_ bytes: [UInt8]) -> ParsedFrame? {
            bytes.withUnsafeBytes { try? FrameParser().parse($0) }
        }
        func echoes(_ records: [PcapRecord], type: UInt8) -> Int {
            records.filter { r in
                guard let f = parse(r.bytes) else { return false }
                return f.protocol == .icmp && f.icmpType == type
            }.count
        }
        #expect(echoes(aLink, type: 8) >= 3 && echoes(aLink, type: 0) >= 3, "a's link: \(aLink.count) frames")
        #expect(echoes(cLink, type: 8) >= 3 && echoes(cLink, type: 0) >= 3, "c's link: \(cLink.count) frames")
        // The same request frame, byte for byte, on both links: a switch rewrites nothing.
        let requestOnA = aLink.first { parse($0.bytes)?.icmpType == 8 }
        #expect(requestOnA != nil && cLink.contains { $0.bytes == requestOnA!.bytes })
        #expect(FileManager.default.fileExists(atPath: "\(dir)/all.pcapng"))
    }
}
