import Testing
import Wire
@testable import Datapath

// What the director must refuse, each under its reason and counted once;
// and fuzzing: arbitrary bytes never trap, and every valid packet that
// comes out (forwarded or emitted) carries valid checksums.

@Suite struct DirectorElementMalformedTests {
    typealias P = DE.Packet

    static func eth(_ type: UInt16, _ payload: [UInt8], to dst: MACAddress = DE.lvsMAC) -> [UInt8] {
        DE.mac(dst) + DE.mac(DE.gwMAC) + DE.be16(type) + payload
    }

    static func patched(_ frame: [UInt8], _ changes: [Int: UInt8]) -> [UInt8] {
        var f = frame
        for (i, b) in changes { f[i] = b }
        return f
    }

    static func toVIP(_ transport: P.Transport, payload: [UInt8] = [], src: IPv4Address = DE.client,
                      dst: IPv4Address = DE.vip, field: UInt16? = nil) -> [UInt8] {
        P(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: src, dst: dst, transport: transport, payload: payload,
          flagsAndOffset: field).frame
    }

    static let syn = DE.fromClient(DE.syn).frame
    static let ipv6: [UInt8] = [0x60, 0, 0, 0, 0, 0, 59, 64] + [UInt8](repeating: 0, count: 15) + [1]
        + [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [2]

    static let rows: [(String, [UInt8], DropReason)] = [
        ("runt frame", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], .malformed("truncated")),
        ("IPv4 header cut short", eth(0x0800, [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6]), .malformed("truncated")),
        ("IP version 6 in an IPv4 frame", patched(syn, [14: 0x65]), .malformed("bad-version")),
        ("IHL 4", patched(syn, [14: 0x44]), .malformed("bad-header-length")),
        ("total length past the frame", patched(syn, [16: 0x01, 17: 0x00]), .malformed("bad-length")),
        ("IPv4 header checksum wrong", patched(syn, [25: syn[25] ^ 0x01]), .malformed("bad-checksum")),
        ("TCP data offset 4", patched(syn, [46: 0x40]), .malformed("bad-header-length")),
        ("TCP header cut short", toVIP(.raw(proto: 6), payload: [0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0]), .malformed("truncated")),
        ("UDP length 4", toVIP(.raw(proto: 17), payload: [0, 53, 0, 80, 0, 4, 0, 0]), .malformed("bad-length")),
        ("ARP cut short", eth(0x0806, [0, 1, 8, 0, 6, 4, 0, 1] + [UInt8](repeating: 0, count: 12), to: .broadcast),
         .malformed("truncated")),
        ("ARP over token ring", patched(DE.arp(.request, from: DE.gwMAC, DE.gw, asking: DE.vip), [15: 6]),
         .malformed("unsupported")),
        ("802.1ad double tag", eth(0x88a8, [0, 5, 0x81, 0, 0, 6, 0x08, 0x00] + Array(syn[14...])), .malformed("unsupported")),
        ("802.1Q tagged IPv4", eth(0x8100, [0, 5, 0x08, 0x00] + Array(syn[14...])), Director.Reason.vlanTagged),
        ("IPv6", eth(0x86dd, ipv6), Director.Reason.ipv6Unsupported),
        ("LLDP", eth(0x88cc, [UInt8](repeating: 0, count: 46)), .unknownEtherType),
        ("unicast to another MAC", patched(syn, [5: 0x01]), .notForUs),
        ("IPv4 broadcast", P(srcMAC: DE.gwMAC, dstMAC: .broadcast, src: DE.gw, dst: IPv4Address(10, 0, 0, 255),
                             transport: .udp(sport: 137, dport: 137)).frame, .notForUs),
        ("first fragment to the VIP", toVIP(.tcp(sport: 1, dport: 80, flags: DE.syn), payload: [1, 2, 3, 4, 5, 6, 7, 8],
                                           field: 0x2000), Director.Reason.fragment),
        ("later fragment to the VIP", toVIP(.raw(proto: 6), payload: [1, 2, 3, 4, 5, 6, 7, 8], field: 0x0001),
         Director.Reason.fragment),
        ("source 0.0.0.0", toVIP(.tcp(sport: 1, dport: 80, flags: DE.syn), src: .any), Director.Reason.martianSource),
        ("source loopback", toVIP(.tcp(sport: 1, dport: 80, flags: DE.syn), src: IPv4Address(127, 0, 0, 1)),
         Director.Reason.martianSource),
        ("source multicast", toVIP(.tcp(sport: 1, dport: 80, flags: DE.syn), src: IPv4Address(224, 0, 0, 5)),
         Director.Reason.martianSource),
        ("source is the VIP", toVIP(.tcp(sport: 1, dport: 80, flags: DE.syn), src: DE.vip), Director.Reason.martianSource),
        ("ICMP timestamp to the VIP", toVIP(.icmp(type: 13), payload: [UInt8](repeating: 0, count: 12)),
         Director.Reason.icmpUnhandled),
        ("GRE to the VIP", toVIP(.raw(proto: 47), payload: [0, 0, 0x08, 0x00]), Refusal.noService.dropReason),
        ("GRE to the director's address", toVIP(.raw(proto: 47), payload: [0, 0, 0x08, 0x00], dst: DE.lvs),
         Director.Reason.localUnhandled),
        ("SSH to the director's address", toVIP(.tcp(sport: 1, dport: 22, flags: DE.syn), dst: DE.lvs),
         Director.Reason.localUnhandled),
        ("UDP to a TCP service's port", toVIP(.udp(sport: 1, dport: 80)), Refusal.noService.dropReason),
    ]

    @Test func refusedWithTheirReasons() {
        let director = DE.director(.dr)
        let driver = ElementDriver(director)
        var expected: [DropReason: UInt64] = [:]
        for (description, frame, reason) in Self.rows {
            let out = driver.send(frame, on: PortID(0), at: .seconds(1))
            #expect(out.verdict == .drop(reason), "\(description)")
            #expect(out.emitted.isEmpty, "\(description)")
            expected[reason, default: 0] += 1
        }
        #expect(driver.send(Self.syn, on: PortID(7), at: .seconds(1)).verdict == .drop(.notForUs), "no such port")
        expected[.notForUs, default: 0] += 1
        #expect(director.drops.counts == expected)
        #expect(director.snapshot().entries == 0)
    }

    /// Arbitrary bytes, and valid frames with one byte changed: never a trap.
    @Test func fuzzNeverTraps() {
        var rng = SeededRandom(seed: 0xD1EC)
        for mode in ForwardingMode.allCases {
            let director = DE.director(mode)
            let driver = ElementDriver(director)
            DE.learnNeighbours(driver)
            _ = driver.send(Self.syn, on: PortID(0), at: .seconds(1))  // so the seeds below hit a live connection
            let seeds = [Self.syn, DE.arp(.request, from: DE.gwMAC, DE.gw, asking: DE.vip),
                         DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 80, DE.client, 40000, DE.ack, ttl: 64).frame,
                         DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 80, DE.local, 1024, DE.ack, ttl: 64).frame,
                         Self.toVIP(.icmp(type: 8), payload: [1, 2, 3]),
                         Self.toVIP(.icmp(type: 3, code: 4, rest: 1400), payload:
                                        DE.tcp(.zero, .zero, DE.vip, 80, DE.client, 40000, DE.ack, ttl: 60).ipPacket)]
            for i in 0..<3000 {
                var frame: [UInt8]
                if i % 3 == 0 {
                    frame = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    if frame.count >= 14 {
                        let types: [UInt16] = [0x0800, 0x0806, 0x8100, 0x86dd]
                        let t = types[Int(rng.next() % 4)]
                        frame[12] = UInt8(t >> 8); frame[13] = UInt8(t & 0xff)
                        if rng.next() % 2 == 0 { frame.replaceSubrange(0..<6, with: DE.mac(DE.lvsMAC)) }
                    }
                } else {
                    frame = seeds[Int(rng.next() % UInt64(seeds.count))]
                    for _ in 0..<(1 + Int(rng.next() % 3)) {
                        frame[14 + Int(rng.next() % UInt64(frame.count - 14))] = UInt8(truncatingIfNeeded: rng.next())
                    }
                }
                _ = driver.send(frame, on: PortID(0), at: .seconds(1 + Double(i) / 1000))
            }
            #expect(director.counters.received >= 3000)
        }
    }

    /// Random valid flows in every mode, both directions, every size and
    /// flag: whatever the director sends carries valid checksums.
    @Test func everyOutputHasValidChecksums() {
        var rng = SeededRandom(seed: 7)
        for mode in ForwardingMode.allCases {
            let reals = mode == .nat || mode == .fullnat
                ? [RealServer(address: DE.rs1, port: 8080), RealServer(address: DE.rs2, port: 9090)]
                : [RealServer(address: DE.rs1), RealServer(address: DE.rs2)]
            let director = DE.director(mode, reals: reals) { $0.core.sloppyTCP = true }
            let driver = ElementDriver(director)
            DE.learnNeighbours(driver)
            var outputs = 0
            for i in 0..<400 {
                let client = IPv4Address(rawValue: 0x7B00_0000 | UInt32(truncatingIfNeeded: rng.next() & 0xFF_FFFF))
                let sport = UInt16(truncatingIfNeeded: rng.next() | 1024)
                let size = Int(rng.next() % 1461)
                // Any flags but RST, which never creates a connection (sloppy or not, as tcp_conn_schedule).
                var p = DE.fromClient(UInt8(truncatingIfNeeded: rng.next()) & 0x1b | DE.syn, sport: sport,
                                      seq: UInt32(truncatingIfNeeded: rng.next()), ack: UInt32(truncatingIfNeeded: rng.next()),
                                      payload: (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, client: client,
                                      ttl: UInt8(2 + rng.next() % 250))
                p.df = rng.next() % 2 == 0
                p.id = UInt16(truncatingIfNeeded: rng.next())
                p.tos = UInt8(truncatingIfNeeded: rng.next()) & 0xfc
                if i % 4 == 0 { p.transport = .udp(sport: sport, dport: 80, checksum: rng.next() % 2 == 0) }
                let t = Double(i) / 100
                let out = driver.send(p.frame, on: PortID(0), at: .seconds(t))
                var frames = out.emitted.map(\.frame)
                if case .forward = out.verdict { frames.append(out.frame) }
                for f in frames {
                    #expect(DE.checksumProblem(f) == nil, "\(mode) #\(i): \(DE.checksumProblem(f) ?? "")")
                }
                outputs += frames.count
                // The real answers (NAT/FULLNAT): the way back must be valid too.
                guard mode.seesReplies, case .forward = out.verdict, out.frame[23] == 6 else { continue }
                let toAddress = IPv4Address(rawValue: out.frame[26..<30].reduce(0) { $0 << 8 | UInt32($1) })
                let fromAddress = IPv4Address(rawValue: out.frame[30..<34].reduce(0) { $0 << 8 | UInt32($1) })
                let toPort = UInt16(out.frame[34]) << 8 | UInt16(out.frame[35])
                let fromPort = UInt16(out.frame[36]) << 8 | UInt16(out.frame[37])
                let realMAC = fromAddress == DE.rs1 ? DE.rs1MAC : DE.rs2MAC
                let reply = DE.tcp(realMAC, DE.lvsMAC, fromAddress, fromPort, toAddress, toPort, DE.ack, ttl: 64,
                                   payload: (0..<(size / 2)).map { UInt8(truncatingIfNeeded: $0) })
                let back = driver.send(reply.frame, on: PortID(0), at: .seconds(t))
                #expect(back.verdict == .forward(PortID(0)), "\(mode) #\(i) reply")
                #expect(DE.checksumProblem(back.frame) == nil, "\(mode) #\(i) reply: \(DE.checksumProblem(back.frame) ?? "")")
                #expect(Array(back.frame[26..<30]) == DE.ip(DE.vip) && Array(back.frame[30..<34]) == DE.ip(client))
            }
            #expect(outputs >= 300, "\(mode)")
        }
    }
}
