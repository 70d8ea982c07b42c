import Foundation
import Testing
@testable import Lab
import Datapath
import Wire

/// The fast path live (`fastpath: true`, docs/fastpath.md): cl → sw
/// (switch) → r1 (router) → srv, every node with the fast path, every link
/// captured. A flow's later frames are forwarded by the nodes' XDP
/// programs, not their elements, and arrive as the elements would have
/// sent them; a power cut stops the kernel forwarding too; captures still
/// hold every frame of every link.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct FastPathLabEndToEndTests {
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { fastpath: true, capture: true }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.77.1.2/24 } }, routes: [ "default via 10.77.1.1" ] }
          sw: { kind: switch }
          r1:
            kind: router
            interfaces: { down: { ip: 10.77.1.1/24 }, up: { ip: 10.77.2.1/24 } }
          srv:
            kind: host
            interfaces: { e0: { ip: 10.77.2.80/24 } }
            routes: [ "default via 10.77.2.1" ]
            serve: { udp-echo: 9000, http: 8080 }
        links:
          - [ cl:e0, sw:p1 ]
          - [ sw:p2, r1:down ]
          - [ r1:up, srv:e0 ]
        """
    }

    /// COUNT datagrams of one flow (fixed source port) from FROM (SOURCE)
    /// to TARGET:9000, each waiting up to 0.3 s for its echo; returns the
    /// echoes that came back intact.
    static func echoes(_ lab: String, count: Int, from: String = "cl", source: String = "10.77.1.2",
                       to target: String = "10.77.2.80") throws -> Int {
        let script = """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
        s.bind(("{source}", 41000))
        ok = 0
        for i in range({count}):
            payload = b"wirelab-%06d" % i + bytes(range(200))
            s.sendto(payload, ("{target}", 9000))
            try:
                ok += s.recv(4096) == payload
            except OSError:
                pass
        print(ok)
        """.replacingOccurrences(of: "{count}", with: String(count)).replacingOccurrences(of: "{source}", with: source)
            .replacingOccurrences(of: "{target}", with: target)
        let r = try Harness.wl("exec", "--lab", lab, from, "--", "/usr/bin/python3", "-c", script, timeout: 60)
        return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    static func fastPath(_ lab: String, _ node: String) throws -> [String: Any] {
        try Harness.datapathNode(lab, node)["fastPath"] as? [String: Any] ?? [:]
    }

    static func number(_ any: Any?) -> Int { (any as? Int) ?? Int((any as? Double) ?? -1) }

    @Test func laterFramesTakeTheKernelPathAndArriveAsTheElementsWouldSendThem() throws {
        let lab = Harness.lab("wlfpe")
        try Harness.withLab(lab, Self.topology(lab)) { _, dir in
            #expect(Harness.waitUntil { (try? Self.echoes(lab, count: 1)) == 1 })
            #expect(try Self.echoes(lab, count: 300) == 300)
            // Both directions of the flow: 600 frames through each node, of
            // which all but the first few went the fast path.
            for node in ["sw", "r1"] {
                let f = try Self.fastPath(lab, node)
                let kernel = Self.number(f["forwarded"])
                let element = Self.number(try Harness.datapathNode(lab, node)["counters"].flatMap { ($0 as? [String: Any])?["forwarded"] })
                print("\(node): fast path forwarded \(kernel), element \(element), entries \(Self.number(f["entries"]))")
                #expect(kernel >= 540, "\(node): \(f)")
                #expect(Self.number(f["entries"]) >= 2, "\(node): \(f)")
            }
            // TCP: the handshake and the close go up, the segments between
            // may go the fast path; the page arrives either way.
            let page = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "2", "http://10.77.2.80:8080/")
            #expect(page.stdout == "srv\n", "\(page.combined)")
            let text = try Harness.wl("status", lab).stdout
            #expect(text.contains("FAST PATH"), "\(text)")

            // A power cut stops the kernel's forwarding as well (a dead box
            // forwards nothing); back on, the flow takes the fast path again.
            try #require(try Harness.wl("fail", lab, "r1").status == 0)
            #expect(try Self.echoes(lab, count: 5) == 0, "r1 is off but the fast path forwarded")
            #expect(Self.number(try Self.fastPath(lab, "r1")["entries"]) == 0)
            try #require(try Harness.wl("heal", lab, "r1").status == 0)
            #expect(Harness.waitUntil { (try? Self.echoes(lab, count: 1)) == 1 })
            let before = Self.number(try Self.fastPath(lab, "r1")["forwarded"])
            #expect(try Self.echoes(lab, count: 100) == 100)
            #expect(Self.number(try Self.fastPath(lab, "r1")["forwarded"]) - before >= 180)

            // Entries live at most 4 s: then the flow's next frame goes up
            // (the router refreshes its neighbour) and makes the entry again.
            let installed = Self.number(try Self.fastPath(lab, "r1")["installed"])
            #expect(Harness.waitUntil(limit: 8) { Self.number(try? Self.fastPath(lab, "r1")["removedAged"]) >= 1 })
            #expect(try Self.echoes(lab, count: 5) == 5)
            #expect(Self.number(try Self.fastPath(lab, "r1")["installed"]) > installed)

            // Every frame of every link is in the capture, with checksums
            // that tshark finds right (the kernel's rewrite is RFC 1624's).
            _ = try Harness.wl("down", lab)
            try Self.expectChecksumsGood(capture: "\(dir)/Captures/\(lab)/all.pcapng",
                                         serverLink: "\(dir)/Captures/\(lab)/r1_up--srv_e0.pcap", echoes: 407)
        }
    }

    /// A NAT director (one arm, a UDP service, two reals) with the fast
    /// path: a connection's later datagrams and their replies are
    /// rewritten in the kernel, VIP → real and back, and the connection
    /// stays in the director's table.
    @Test func aDirectorsEstablishedConnectionTakesTheKernelPath() throws {
        let lab = Harness.lab("wlfpl")
        let yaml = """
        name: \(lab)
        defaults: { fastpath: true, capture: true }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.78.1.2/24 } }, routes: [ "default via 10.78.1.1" ] }
          gw:
            kind: router
            interfaces: { e0: { ip: 10.78.1.1/24 }, e1: { ip: 10.78.0.254/24 } }
          sw: { kind: switch }
          lb:
            kind: director
            interfaces: { e0: { ip: 10.78.0.2/24 } }
            routes: [ "default via 10.78.0.254" ]
            services:
              - { vip: 10.78.0.100, port: 9000, protocol: udp, scheduler: rr, mode: nat,
                  reals: [ { ip: 10.78.0.11, port: 9000 }, { ip: 10.78.0.12, port: 9000 } ] }
          rs1: { kind: host, interfaces: { e0: { ip: 10.78.0.11/24 } }, serve: { udp-echo: 9000 } }
          rs2: { kind: host, interfaces: { e0: { ip: 10.78.0.12/24 } }, serve: { udp-echo: 9000 } }
        links:
          - [ cl:e0, gw:e0 ]
          - [ gw:e1, sw:p1 ]
          - [ lb:e0, sw:p2 ]
          - [ rs1:e0, sw:p3 ]
          - [ rs2:e0, sw:p4 ]
        """
        try Harness.withLab(lab, yaml) { _, dir in
            let echo = { (count: Int) in try Self.echoes(lab, count: count, source: "10.78.1.2", to: "10.78.0.100") }
            #expect(Harness.waitUntil { (try? echo(1)) == 1 })
            #expect(try echo(300) == 300)
            for node in ["gw", "sw", "lb"] {
                let f = try Self.fastPath(lab, node)
                print("\(node): fast path forwarded \(Self.number(f["forwarded"])), entries \(Self.number(f["entries"]))")
                // 301 datagrams and their echoes; the switch carries each twice (gw → lb → real and back).
                #expect(Self.number(f["forwarded"]) >= (node == "sw" ? 1000 : 500), "\(node): \(f)")
            }
            let lvs = try Harness.wl("lvs", lab)
            #expect(lvs.status == 0 && lvs.stdout.contains("10.78.0.100:9000"), "\(lvs.combined)")
            _ = try Harness.wl("down", lab)
            try Self.expectChecksumsGood(capture: "\(dir)/Captures/\(lab)/all.pcapng",
                                         serverLink: "\(dir)/Captures/\(lab)/cl_e0--gw_e0.pcap", echoes: 301)
        }
    }

    /// No bad checksum anywhere in CAPTURE; SERVERLINK (r1 → srv) holds
    /// each of the ECHOES datagrams that came back, and its echo.
    static func expectChecksumsGood(capture: String, serverLink: String, echoes: Int) throws {
        let tshark = "/usr/bin/tshark"
        guard FileManager.default.isExecutableFile(atPath: tshark) else {
            Issue.record("tshark is not installed (scripts/install-deps.sh installs it)")
            return
        }
        let checked = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
        let all = try Harness.run(tshark, ["-n", "-r", serverLink, "-Y", "udp.port == 9000"] + checked)
        let bad = try Harness.run(tshark, ["-n", "-r", capture, "-Y",
                                           "ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\""] + checked)
        try #require(all.status == 0 && bad.status == 0, "tshark: \(all.combined.suffix(1000)) \(bad.combined.suffix(1000))")
        let frames = all.stdout.split(separator: "\n").count
        #expect(frames >= echoes * 2, "UDP frames captured on r1 → srv: \(frames)")
        #expect(bad.stdout.isEmpty, "bad checksums:\n\(bad.stdout.prefix(2000))")
    }
}

/// What the daemon keys a frame by before its element sees it (no root).
@Suite struct FastPathKeyOfFrameTests {
    static func frame(proto: UInt8 = 17, flags: UInt8 = 0x10, ihl: UInt8 = 5, fragment: UInt16 = 0x4000) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 14 + Int(ihl) * 4 + 20)
        f.replaceSubrange(0..<12, with: [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])
        f[12] = 0x08; f[13] = 0x00
        f[14] = 0x40 | ihl
        f[20] = UInt8(fragment >> 8); f[21] = UInt8(fragment & 0xFF)
        f[23] = proto
        f.replaceSubrange(26..<34, with: [10, 0, 0, 1, 10, 0, 0, 2])
        let l4 = 14 + Int(ihl) * 4
        f.replaceSubrange(l4..<(l4 + 4), with: [0x9C, 0x40, 0x23, 0x28])   // 40000 → 9000
        f[l4 + 13] = flags
        return f
    }

    static func key(_ f: [UInt8]) -> FastPathKey? { f.withUnsafeBytes { NodeFastPath.key(of: $0, slot: 3) } }

    @Test func udpAndTCPWithoutStateChangesAreKeyed() throws {
        let k = try #require(Self.key(Self.frame()))
        #expect(k == FastPathKey(destinationMAC: MACAddress(2, 0, 0, 0, 0, 1), sourceMAC: MACAddress(2, 0, 0, 0, 0, 2),
                                 source: IPv4Address(rawValue: 0x0A00_0001), destination: IPv4Address(rawValue: 0x0A00_0002),
                                 sourcePort: 40000, destinationPort: 9000, ipProtocol: 17, ingressSlot: 3))
        #expect(Self.key(Self.frame(proto: 6, flags: 0x18)) != nil)   // ACK+PSH
    }

    @Test func whatTheProgramNeverTakesIsNotKeyed() {
        // State changes, and segments without ACK.
        for flags: UInt8 in [0x02, 0x01, 0x04, 0x12, 0x11, 0x08, 0x00] { #expect(Self.key(Self.frame(proto: 6, flags: flags)) == nil, "flags \(flags)") }
        #expect(Self.key(Self.frame(proto: 1)) == nil)                 // ICMP
        #expect(Self.key(Self.frame(ihl: 6)) == nil)                   // options
        #expect(Self.key(Self.frame(fragment: 0x2000)) == nil)         // MF
        #expect(Self.key(Self.frame(fragment: 0x0010)) == nil)         // an offset
        var arp = Self.frame(); arp[13] = 0x06
        #expect(Self.key(arp) == nil)
        #expect(Self.key(Array(Self.frame().prefix(40))) == nil)       // too short for the ports
    }
}
