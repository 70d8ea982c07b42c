import Foundation
import Testing
import Wire
import LinuxNet

/// client → gw (Swift router) → sw (Swift switch) → lvs (Swift director) →
/// two kernel real servers, for each of the four modes: 100 HTTP requests
/// over real kernel TCP all succeed, the spread follows the weights (wrr
/// 1:2), and the captures on the director's link and on both real servers'
/// links show exactly the rewrites of the mode (DESIGN.md's table).
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct DirectorLabEndToEndTests {
    static let client = IPv4Address(100, 64, 7, 7)
    static let vip = IPv4Address(10, 61, 0, 100)
    static let directorAddress = IPv4Address(10, 61, 0, 2)
    static let local = IPv4Address(10, 61, 0, 50)
    static let reals = ["one": IPv4Address(10, 61, 0, 11), "two": IPv4Address(10, 61, 0, 12)]

    /// DR and TUN cannot change the port: their reals listen on the
    /// service's port 80; NAT and FULLNAT reals on 8081.
    static func realPort(_ mode: String) -> UInt16 { mode == "dr" || mode == "tun" ? 80 : 8081 }

    static func topology(_ lab: String, mode: String, health: String = "") -> String {
        let local = mode == "fullnat" ? "\n        local-addresses: [ 10.61.0.50 ]" : ""
        let port = realPort(mode)
        let realPort = port == 80 ? "" : "port: \(port), "
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
                mode: \(mode)\(local)\(health)
                reals:
                  - { ip: 10.61.0.11, \(realPort)weight: 1 }
                  - { ip: 10.61.0.12, \(realPort)weight: 2 }
          one: { kind: host, interfaces: { eth0: { ip: 10.61.0.11/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: \(port) } }
          two: { kind: host, interfaces: { eth0: { ip: 10.61.0.12/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: \(port) } }
        links:
          - [ client:eth0, gw:out ]
          - [ gw:in, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ one:eth0, sw:p3 ]
          - [ two:eth0, sw:p4 ]
        """
    }

    static func parse(_ bytes: [UInt8]) -> ParsedFrame? { bytes.withUnsafeBytes { try? FrameParser().parse($0) } }

    /// The IPv4 packet of a frame (from the IP header on).
    static func l3(_ bytes: [UInt8], _ f: ParsedFrame) -> [UInt8] { Array(bytes[f.l3Offset..<(f.l3Offset + f.ipLength)]) }

    /// The packet with TTL and header checksum zeroed: what DR must keep.
    static func withoutTTL(_ packet: [UInt8]) -> [UInt8] {
        var p = packet
        p[8] = 0; p[10] = 0; p[11] = 0
        return p
    }

    /// The inner frame of an IPIP frame, re-framed with the outer Ethernet header.
    static func inner(_ bytes: [UInt8], _ f: ParsedFrame) -> (bytes: [UInt8], frame: ParsedFrame)? {
        let start = f.l3Offset + f.ipHeaderLength
        guard f.protocol == .ipip, start < bytes.count else { return nil }
        let framed = Array(bytes[0..<f.l3Offset]) + Array(bytes[start..<(f.l3Offset + f.ipLength)])
        return parse(framed).map { (framed, $0) }
    }

    struct Frame {
        var bytes: [UInt8]
        var f: ParsedFrame
    }

    static func frames(_ path: String) throws -> [Frame] {
        try PcapReader.readAll(path: path).compactMap { r in parse(r.bytes).map { Frame(bytes: r.bytes, f: $0) } }
            .filter { $0.f.isIPv4 }
    }

    @Test(arguments: ["nat", "dr", "tun", "fullnat"])
    func hundredRequestsSpreadByWeightAndTheCapturesShowTheModesRewrites(mode: String) throws {
        let lab = Harness.lab("wltlvs\(mode.prefix(2))")
        let file = try Harness.topologyFile(Self.topology(lab, mode: mode))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (up, mac) = try Harness.upReportingMACs(file, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        // `up` says what it configured on the real servers.
        let notes = ((try? JSONSerialization.jsonObject(with: Data(up.stdout.utf8))) as? [String: Any])?["notes"] as? [String] ?? []
        for name in ["one", "two"] {
            let decap = notes.contains { $0.hasPrefix("\(name): IPIP decapsulation") }
            #expect(decap == (mode == "tun"), "\(mode): IPIP decapsulation note for \(name): \(notes)")
        }

        let started = Date()
        let script = (0..<100).map { _ in "curl -s --max-time 5 http://10.61.0.100/" }.joined(separator: "; ")
        let curls = try Harness.wl("exec", "--lab", lab, "client", "--", "sh", "-c", script, timeout: 180)
        let seconds = Date().timeIntervalSince(started)
        let answers = curls.stdout.split(separator: "\n")
        print("\(mode): 100 requests in \(String(format: "%.2f", seconds)) s")
        #expect(answers.count == 100 && answers.allSatisfy { $0 == "one" || $0 == "two" },
                "all 100 requests answered: \(curls.combined)")
        let one = answers.filter { $0 == "one" }.count, two = answers.filter { $0 == "two" }.count
        // wrr 1:2 over 100 new connections: 33 or 34 and 67 or 66.
        #expect(abs(one * 3 - 100) <= 2 && one + two == 100, "wrr 1:2 over 100 connections: one \(one), two \(two)")

        let lvs = try Harness.wl("lvs", lab, "--json")
        let lvsJSON = try JSONSerialization.jsonObject(with: Data(lvs.stdout.utf8)) as? [String: Any]
        let reals = ((lvsJSON?["directors"] as? [[String: Any]])?.first?["services"] as? [[String: Any]])?.first?["reals"] as? [[String: Any]] ?? []
        #expect(reals.compactMap { $0["totalConnections"] as? Int } == [one, two], "wirelab lvs: \(lvs.combined)")

        if mode == "tun" {
            // A request bigger than fits the tunnel (20 bytes of outer header):
            // the director answers "fragmentation needed" and path MTU
            // discovery on the client gets it through.
            let big = try Harness.wl("exec", "--lab", lab, "client", "--", "curl", "-s", "--max-time", "10",
                                     "-H", "X-Big: " + String(repeating: "x", count: 4000), "http://10.61.0.100/", timeout: 30)
            #expect(["one", "two"].contains(big.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                    "a request larger than the tunnel's MTU gets through: \(big.combined)")
            let status = try Harness.wl("status", lab, "--json")
            let nodes = ((try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) as? [String: Any])
                .flatMap { ($0["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] } ?? []
            let drops = nodes.first { $0["node"] as? String == "lvs" }?["drops"] as? [String: Any]
            #expect((drops?["frag-needed"] as? Int ?? 0) > 0, "the director sent frag-needed: \(String(describing: drops))")
        }

        try #require(try Harness.wl("down", lab).status == 0)
        let captures = "\(dir)/Captures/\(lab)"
        let director = try Self.frames("\(captures)/lvs_eth0--sw_p2.pcap")
        let realLinks = try ["one": Self.frames("\(captures)/one_eth0--sw_p3.pcap"),
                             "two": Self.frames("\(captures)/two_eth0--sw_p4.pcap")]
        try checkRewrites(mode: mode, mac: mac, director: director, realLinks: realLinks, connections: ["one": one, "two": two])
    }

    func checkRewrites(mode: String, mac: [String: MACAddress], director: [Frame], realLinks: [String: [Frame]],
                       connections: [String: Int]) throws {
        let lvsMAC = try #require(mac["lvs:eth0"]), gwMAC = try #require(mac["gw:in"])
        let realMACs = ["one": try #require(mac["one:eth0"]), "two": try #require(mac["two:eth0"])]
        let port = Self.realPort(mode)

        // client → director, as it arrived: dst = VIP:80, src = client.
        let arriving = director.filter { $0.f.sourceMAC == gwMAC && $0.f.destinationMAC == lvsMAC && $0.f.isTCP }
        #expect(arriving.count >= 100 * 3, "\(mode): the client's frames reach the director: \(arriving.count)")
        for a in arriving {
            #expect(a.f.destinationIPv4 == Self.vip && a.f.destinationPort == 80 && a.f.sourceIPv4 == Self.client,
                    "\(mode): client → director is client → VIP:80")
        }
        let arrivingPackets = Set(arriving.map { Self.l3($0.bytes, $0.f) })
        let arrivingWithoutTTL = Dictionary(arriving.map { (Self.withoutTTL(Self.l3($0.bytes, $0.f)), $0.f.timeToLive) },
                                            uniquingKeysWith: { a, _ in a })

        // director → real, on the director's link and as received on each real's link.
        let fromDirector = director.filter { $0.f.sourceMAC == lvsMAC && realMACs.values.contains($0.f.destinationMAC) }
        #expect(fromDirector.count >= 100 * 3, "\(mode): the director forwarded: \(fromDirector.count) frames")
        var toRealsSeen = 0
        for (name, frames) in realLinks {
            let realMAC = realMACs[name]!, realIP = Self.reals[name]!
            let received = frames.filter { $0.f.sourceMAC == lvsMAC && $0.f.destinationMAC == realMAC }
            toRealsSeen += received.count
            #expect(received.count >= (connections[name] ?? 0) * 3, "\(mode): \(name) received \(received.count) frames")
            for r in received {
                let f = r.f
                switch mode {
                case "dr":
                    // Only the MACs change (and TTL with its checksum).
                    let key = Self.withoutTTL(Self.l3(r.bytes, f))
                    #expect(f.isTCP && f.destinationIPv4 == Self.vip && f.destinationPort == 80 && f.sourceIPv4 == Self.client)
                    #expect(arrivingWithoutTTL[key].map { $0 == f.timeToLive + 1 } == true,
                            "DR: the packet as it arrived, TTL one less")
                case "tun":
                    // A new IPv4 header (protocol 4) director → real around
                    // the client's packet, its TTL one less (as IPVS, RFC
                    // 2003 §3.1) and nothing else changed; the outer TTL is
                    // the decremented inner one.
                    #expect(f.protocol == .ipip && f.sourceIPv4 == Self.directorAddress && f.destinationIPv4 == realIP,
                            "TUN outer header: \(f.sourceIPv4) → \(f.destinationIPv4) proto \(f.protocol)")
                    let innerPacket = Array(r.bytes[(f.l3Offset + f.ipHeaderLength)..<(f.l3Offset + f.ipLength)])
                    let innerTTL = innerPacket[8]
                    #expect(arrivingWithoutTTL[Self.withoutTTL(innerPacket)].map { $0 == innerTTL + 1 } == true,
                            "TUN: the inner packet is the client's as it arrived, TTL one less")
                    #expect(!arrivingPackets.contains(innerPacket), "TUN: the inner TTL went down")
                    #expect(f.timeToLive == innerTTL, "TUN: outer TTL \(f.timeToLive) = inner TTL \(innerTTL)")
                    let innerHeader = Array(innerPacket[0..<(Int(innerPacket[0] & 0x0f) * 4)])
                    #expect(innerHeader.withUnsafeBytes { InternetChecksum.checksum($0) } == 0, "TUN: inner IPv4 header checksum")
                case "nat":
                    #expect(f.isTCP && f.destinationIPv4 == realIP && f.destinationPort == port && f.sourceIPv4 == Self.client,
                            "NAT: dst = real IP:port, src kept: \(f.sourceIPv4) → \(f.destinationIPv4):\(f.destinationPort)")
                default:
                    #expect(f.isTCP && f.destinationIPv4 == realIP && f.destinationPort == port && f.sourceIPv4 == Self.local,
                            "FULLNAT: src = local address, dst = real IP:port: \(f.sourceIPv4) → \(f.destinationIPv4):\(f.destinationPort)")
                }
                // The IPv4 header checksum of what the real received is right.
                let header = Array(r.bytes[f.l3Offset..<(f.l3Offset + f.ipHeaderLength)])
                #expect(header.withUnsafeBytes { InternetChecksum.checksum($0) } == 0, "\(mode): IPv4 header checksum")
            }

            // real → …: replies.
            let replies = frames.filter { $0.f.sourceMAC == realMAC && $0.f.isTCP }
            #expect(replies.count >= (connections[name] ?? 0) * 3, "\(mode): \(name) replied: \(replies.count) frames")
            for r in replies {
                let f = r.f
                switch mode {
                case "dr", "tun":
                    #expect(f.sourceIPv4 == Self.vip && f.sourcePort == 80 && f.destinationIPv4 == Self.client && f.destinationMAC == gwMAC,
                            "\(mode): replies come from the VIP, straight to the gateway")
                case "nat":
                    #expect(f.sourceIPv4 == realIP && f.sourcePort == port && f.destinationIPv4 == Self.client && f.destinationMAC == lvsMAC,
                            "NAT: replies go to the director")
                default:
                    #expect(f.sourceIPv4 == realIP && f.sourcePort == port && f.destinationIPv4 == Self.local && f.destinationMAC == lvsMAC,
                            "FULLNAT: replies go to the local address")
                }
            }
        }
        print("\(mode): checked \(arriving.count) client→director, \(fromDirector.count) director→real frames at the director; "
              + realLinks.map { name, frames in "\(name): \(frames.filter { $0.f.destinationMAC == realMACs[name]! && $0.f.sourceMAC == lvsMAC }.count) in, \(frames.filter { $0.f.sourceMAC == realMACs[name]! && $0.f.isTCP }.count) out" }.sorted().joined(separator: ", "))
        #expect(toRealsSeen == fromDirector.count, "\(mode): every frame the director sent reached a real: \(toRealsSeen) of \(fromDirector.count)")

        // director → gateway: the translated replies (NAT, FULLNAT), nothing in DR/TUN.
        let toGateway = director.filter { $0.f.sourceMAC == lvsMAC && $0.f.destinationMAC == gwMAC && $0.f.isTCP }
        let repliesAtDirector = director.filter { realMACs.values.contains($0.f.sourceMAC) && $0.f.destinationMAC == lvsMAC && $0.f.isTCP }
        switch mode {
        case "dr", "tun":
            #expect(toGateway.isEmpty && repliesAtDirector.isEmpty, "\(mode): replies bypass the director: \(toGateway.count) / \(repliesAtDirector.count)")
        default:
            #expect(toGateway.count >= 100 * 3, "\(mode): the director sent the replies on: \(toGateway.count)")
            for g in toGateway {
                #expect(g.f.sourceIPv4 == Self.vip && g.f.sourcePort == 80 && g.f.destinationIPv4 == Self.client,
                        "\(mode): replies leave the director as VIP:80 → client")
            }
        }
    }
}
