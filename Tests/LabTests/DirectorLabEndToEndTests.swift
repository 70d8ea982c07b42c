import Foundation
import Testing
import Wire
import LinuxNet

/// client → gw (Swift router) → sw (Swift switch) → lvs (Swift director) →
/// two kernel real servers, for the NAT, DR and FULLNAT modes: real HTTP
/// over kernel TCP all succeeds, the spread follows the weights (wrr 1:2),
/// and the director's link shows exactly the rewrite of its mode.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct DirectorLabEndToEndTests {
    static func topology(_ lab: String, mode: String) -> String {
        let local = mode == "fullnat" ? "\n        local-addresses: [ 10.61.0.50 ]" : ""
        return """
        name: \(lab)
        defaults: { capture: true }
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 100.64.7.7/24 } }, routes: [ "default via 100.64.7.1" ] }
          gw:
            kind: router
            interfaces: { out: { ip: 100.64.7.1/24 }, in: { ip: 10.61.0.254/24 } }
          sw: { kind: switch }
          lvs:
            kind: director
            interfaces: { eth0: { ip: 10.61.0.2/24 } }
            routes: [ "default via 10.61.0.254" ]
            services:
              - vip: 10.61.0.100
                port: 80
                scheduler: wrr
                mode: \(mode)\(local)
                reals:
                  - { ip: 10.61.0.11, port: 8081, weight: 1 }
                  - { ip: 10.61.0.12, port: 8081, weight: 2 }
          one: { kind: host, interfaces: { eth0: { ip: 10.61.0.11/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: 8081 } }
          two: { kind: host, interfaces: { eth0: { ip: 10.61.0.12/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: 8081 } }
        links:
          - [ client:eth0, gw:out ]
          - [ gw:in, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ one:eth0, sw:p3 ]
          - [ two:eth0, sw:p4 ]
        """
    }

    static func parse(_ bytes: [UInt8]) -> ParsedFrame? { bytes.withUnsafeBytes { try? FrameParser().parse($0) } }

    // DR needs the real's port to be the service's (DR cannot change ports).
    @Test(arguments: ["nat", "dr", "fullnat"])
    func requestsSpreadByWeightAndTheModesRewriteShows(mode: String) throws {
        let lab = Harness.lab("wltlvs\(mode.prefix(2))")
        var yaml = Self.topology(lab, mode: mode)
        if mode == "dr" { yaml = yaml.replacingOccurrences(of: "port: 8081, weight", with: "weight").replacingOccurrences(of: "http: 8081", with: "http: 80") }
        let file = try Harness.topologyFile(yaml)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (up, mac) = try Harness.upReportingMACs(file, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")

        let script = (0..<60).map { _ in "curl -s --max-time 5 http://10.61.0.100/" }.joined(separator: "; ")
        let curls = try Harness.wl("exec", "--lab", lab, "client", "--", "sh", "-c", script, timeout: 120)
        let answers = curls.stdout.split(separator: "\n")
        #expect(answers.count == 60, "all 60 requests answered: \(curls.combined)")
        let one = answers.filter { $0 == "one" }.count, two = answers.filter { $0 == "two" }.count
        #expect(one == 20 && two == 40, "wrr 1:2 over 60 new connections: one \(one), two \(two)")

        // `wirelab lvs` counts the same connections per real.
        let lvs = try Harness.wl("lvs", lab, "--json")
        let lvsJSON = try JSONSerialization.jsonObject(with: Data(lvs.stdout.utf8)) as? [String: Any]
        let reals = ((lvsJSON?["directors"] as? [[String: Any]])?.first?["services"] as? [[String: Any]])?.first?["reals"] as? [[String: Any]] ?? []
        #expect(reals.compactMap { $0["totalConnections"] as? Int } == [20, 40], "wirelab lvs: \(lvs.combined)")

        try #require(try Harness.wl("down", lab).status == 0)
        // What the director sent to the reals, as received by the switch.
        let records = try PcapReader.readAll(path: "\(dir)/Captures/\(lab)/lvs_eth0--sw_p2.pcap")
        let toReals = records.compactMap { Self.parse($0.bytes) }.filter { $0.sourceMAC == mac["lvs:eth0"] && $0.isTCP
            && ($0.destinationMAC == mac["one:eth0"] || $0.destinationMAC == mac["two:eth0"]) }
        #expect(toReals.count >= 60 * 3, "the director forwarded the connections: \(toReals.count) frames")
        for f in toReals {
            switch mode {
            case "dr":
                #expect(f.destinationIPv4 == IPv4Address(10, 61, 0, 100) && f.destinationPort == UInt16(80), "DR keeps the VIP")
                #expect(f.sourceIPv4 == IPv4Address(100, 64, 7, 7), "DR keeps the client address")
            case "nat":
                #expect([IPv4Address(10, 61, 0, 11), IPv4Address(10, 61, 0, 12)].contains(f.destinationIPv4) && f.destinationPort == UInt16(8081))
                #expect(f.sourceIPv4 == IPv4Address(100, 64, 7, 7), "NAT keeps the client address")
            default:
                #expect([IPv4Address(10, 61, 0, 11), IPv4Address(10, 61, 0, 12)].contains(f.destinationIPv4) && f.destinationPort == UInt16(8081))
                #expect(f.sourceIPv4 == IPv4Address(10, 61, 0, 50), "FULLNAT sources from the local address")
            }
        }
    }
}
