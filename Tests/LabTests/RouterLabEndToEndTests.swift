import Foundation
import Testing
import Wire
import LinuxNet

/// Client → r1 → (r2 | r3) → r4 → server through Swift routers: ECMP
/// spreads flows over both paths and keeps each flow on one, every hop
/// rewrites MACs and decrements TTL (seen in the captures), and malformed
/// frames are dropped, counted by reason, and never stop forwarding.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct RouterLabEndToEndTests {
    static func topology(_ lab: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: true }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 192.168.71.10/24 } }, routes: [ "default via 192.168.71.1" ] }
          r1:
            kind: router
            interfaces:
              down: { ip: 192.168.71.1/24 }
              up-a: { ip: 172.20.1.1/30 }
              up-b: { ip: 172.20.2.1/30 }
            routes: [ { to: 198.18.0.0/24, via: [ 172.20.1.2, 172.20.2.2 ] } ]
            ecmp: { seed: 99 }
          r2:
            kind: router
            interfaces: { a: { ip: 172.20.1.2/30 }, b: { ip: 172.20.3.1/30 } }
            routes: [ "198.18.0.0/24 via 172.20.3.2", "192.168.71.0/24 via 172.20.1.1" ]
          r3:
            kind: router
            interfaces: { a: { ip: 172.20.2.2/30 }, b: { ip: 172.20.4.1/30 } }
            routes: [ "198.18.0.0/24 via 172.20.4.2", "192.168.71.0/24 via 172.20.2.1" ]
          r4:
            kind: router
            interfaces:
              from-2: { ip: 172.20.3.2/30 }
              from-3: { ip: 172.20.4.2/30 }
              lan: { ip: 198.18.0.1/24 }
            routes: [ { to: 192.168.71.0/24, via: [ 172.20.3.1, 172.20.4.1 ] } ]
          srv: { kind: host, interfaces: { e0: { ip: 198.18.0.80/24 } }, routes: [ "default via 198.18.0.1" ], serve: { http: 8080 } }
        links:
          - [ cl:e0, r1:down ]
          - [ r1:up-a, r2:a ]
          - [ r1:up-b, r3:a ]
          - [ r2:b, r4:from-2 ]
          - [ r3:b, r4:from-3 ]
          - [ r4:lan, srv:e0 ]
        """
    }

    static func parse(_ bytes: [UInt8]) -> ParsedFrame? { bytes.withUnsafeBytes { try? FrameParser().parse($0) } }

    @Test(arguments: ["afxdp", "afpacket"])
    func ecmpSpreadsAndPinsFlowsAndEveryHopRewrites(datapath: String) throws {
        let lab = Harness.lab("wltrt\(datapath == "afxdp" ? "x" : "p")")
        let file = try Harness.topologyFile(Self.topology(lab, datapath: datapath))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (up, mac) = try Harness.upReportingMACs(file, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")

        let ping = try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.80")
        #expect(ping.status == 0, "ping through four routers: \(ping.combined)")

        // 64 flows: 64 TCP connections from distinct source ports.
        let script = (0..<64).map { "curl -s --max-time 5 --local-port \(41000 + $0) -o /dev/null -w '%{http_code}\\n' http://198.18.0.80:8080/" }
            .joined(separator: "; ")
        let curls = try Harness.wl("exec", "--lab", lab, "cl", "--", "sh", "-c", script, timeout: 120)
        #expect(curls.stdout.split(separator: "\n").filter { $0 == "200" }.count == 64, "all 64 requests answered: \(curls.combined)")

        // Bad frames at r1, from cl's raw socket, addressed to r1's MAC.
        let bad = try Harness.wl("exec", "--lab", lab, "cl", "--", "/usr/bin/python3", "-c", Self.badFrames(
            to: mac["r1:down"]!, from: mac["cl:e0"]!))
        #expect(bad.status == 0, "sending bad frames: \(bad.combined)")
        let reasons = ["malformed:truncated", "malformed:bad-header-length", "malformed:bad-checksum", "malformed:bad-length", "unknown-ethertype"]
        var r1Drops: [String: Int] = [:]
        // The daemon counts them as it gets to them: wait (bounded) for every reason.
        try Harness.waitUntil {
            let status = try Harness.wl("status", lab, "--json")
            let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let nodes = (json?["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
            r1Drops = nodes.first { $0["node"] as? String == "r1" }?["drops"] as? [String: Int] ?? [:]
            return reasons.allSatisfy { (r1Drops[$0] ?? 0) >= 1 }
        }
        for reason in reasons {
            #expect((r1Drops[reason] ?? 0) >= 1, "r1 counts \(reason): \(r1Drops)")
        }
        let after = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-sS", "--max-time", "5", "http://198.18.0.80:8080/")
        #expect(after.stdout == "srv\n", "forwarding goes on after bad frames")

        try #require(try Harness.wl("down", lab).status == 0)
        let captures = "\(dir)/Captures/\(lab)"
        func flows(_ link: String) throws -> [UInt16: [ParsedFrame]] {
            var result: [UInt16: [ParsedFrame]] = [:]
            for record in try PcapReader.readAll(path: "\(captures)/\(link).pcap") {
                guard let f = Self.parse(record.bytes), f.isTCP, f.destinationPort == 8080,
                      (41000..<41064).contains(f.sourcePort) else { continue }
                result[f.sourcePort, default: []].append(f)
            }
            return result
        }
        let viaR2 = try flows("r1_up-a--r2_a"), viaR3 = try flows("r1_up-b--r3_a")
        #expect(viaR2.count > 0 && viaR3.count > 0, "both ECMP paths carry flows: \(viaR2.count) via r2, \(viaR3.count) via r3")
        #expect(Set(viaR2.keys).isDisjoint(with: viaR3.keys), "no flow takes both paths")
        #expect(viaR2.count + viaR3.count == 64, "every flow seen on one path")

        // Each hop: source MAC = egress router port, destination MAC = next
        // hop, TTL one less per router (Linux sends 64).
        for f in viaR2.values.joined() {
            #expect(f.sourceMAC == mac["r1:up-a"] && f.destinationMAC == mac["r2:a"] && f.timeToLive == 63)
        }
        for f in viaR3.values.joined() {
            #expect(f.sourceMAC == mac["r1:up-b"] && f.destinationMAC == mac["r3:a"] && f.timeToLive == 63)
        }
        let atServer = try flows("r4_lan--srv_e0")
        #expect(atServer.count == 64)
        for f in atServer.values.joined() {
            #expect(f.sourceMAC == mac["r4:lan"] && f.destinationMAC == mac["srv:e0"] && f.timeToLive == 61)
        }
    }

    /// A python script sending five malformed frames through a raw socket.
    static func badFrames(to dst: MACAddress, from src: MACAddress) -> String {
        func hex(_ m: MACAddress) -> String { m.description.replacingOccurrences(of: ":", with: "") }
        return """
            import socket, struct
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("e0", 0))
            eth = bytes.fromhex("\(hex(dst))\(hex(src))")
            def ip(ihl=5, total=40, csum=None):
                h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, 0, 64, 17, 0,
                                          bytes([192,168,71,10]), bytes([198,18,0,80])))
                if csum is None:
                    c = sum(struct.unpack("!10H", bytes(h))); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
                    csum = (~c) & 0xffff
                h[10:12] = struct.pack("!H", csum)
                return bytes(h)
            udp = bytes(20)
            s.send(eth + b"\\x08\\x00" + ip()[:10])                       # truncated IPv4 header
            s.send(eth + b"\\x08\\x00" + ip(ihl=3) + udp)                  # IHL below 5
            s.send(eth + b"\\x08\\x00" + ip(csum=0x1234) + udp)            # bad header checksum
            s.send(eth + b"\\x08\\x00" + ip(total=1400) + udp)             # total length past the frame
            s.send(eth + b"\\x88\\xb5" + bytes(46))                        # unknown EtherType
            """
    }
}
