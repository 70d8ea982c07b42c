import Glibc
import LinuxNet
import Testing
import Wire
@testable import Datapath

/// TUN on the fast path: the director element's encapsulation of an
/// established connection's frame, made an entry by `FastPathEntry.derive`,
/// and the lab's XDP program repeating it (DirectorElementFramesTests' `DE`
/// topology and frames, built independently of the code under test).
enum FPT {
    static let remotes = [IPv4Address(172, 16, 0, 1), IPv4Address(172, 16, 0, 2)]
    /// Two reals on the director's link, two behind the gateway.
    static let reals = ([DE.rs1, DE.rs2] + remotes).map { RealServer(address: $0) }
    /// The MTU of each director of the differential test (director i enters and leaves by slot i).
    static let mtus = [1500, 1000]

    /// A TUN director (TCP VIP:80, UDP VIP:53, `reals`) of interface MTU MTU, its neighbours learnt.
    static func driver(mtu: Int = 1500) -> ElementDriver {
        let driver = ElementDriver(DE.director(.tun, reals: reals, mtu: mtu) {
            $0.services.append(Director.Service(VirtualService(address: DE.vip, port: 53, proto: .udp, scheduler: .rr,
                                                               mode: .tun), reals: reals))
        })
        DE.learnNeighbours(driver)
        return driver
    }

    /// A client's packet to the VIP, as the gateway delivers it.
    static func packet(from client: IPv4Address, sport: UInt16, tcp: Bool, flags: UInt8 = DE.ack, payload: [UInt8] = [],
                       ttl: UInt8 = 64, tos: UInt8 = 0, df: Bool = true, id: UInt16 = 0x1c46, udpChecksum: Bool = true)
        -> DE.Packet {
        DE.Packet(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: client, dst: DE.vip,
                  transport: tcp ? .tcp(sport: sport, dport: 80, flags: flags, seq: 1001, ack: 5001)
                                 : .udp(sport: sport, dport: 53, checksum: udpChecksum),
                  payload: payload, ttl: ttl, id: id, df: df, tos: tos)
    }

    /// BEFORE through DRIVER (entering on port 0) and its entry (ingress and egress SLOT).
    static func derive(_ before: [UInt8], _ driver: ElementDriver, slot: UInt16 = 0, maxLength: Int = 1500,
                       at t: Double = 1) throws -> FastPathEntry {
        let out = driver.send(before, on: PortID(0), at: .seconds(t))
        #expect(out.verdict == .forward(PortID(0)))
        return try FastPathEntry.derive(before: before, after: out.frame, ingressSlot: slot, egressSlot: slot,
                                        maxLength: maxLength, generation: 1)
    }
}

/// `derive` and TUN, no BPF: exactly the director's encapsulation with DF
/// becomes an entry; anything else is refused with its reason.
struct FastPathTunnelEntryTests {
    @Test func anAtomicTunnelBecomesAnEncapsulatingEntry() throws {
        let driver = FPT.driver()
        let p = FPT.packet(from: DE.client, sport: 40000, tcp: false, payload: Array(0..<40), tos: 0x2a)
        let entry = try FPT.derive(p.frame, driver)
        #expect(entry.encapsulates && entry.decrementsTTL)
        #expect(entry.outerSource == DE.lvs && FPT.reals.contains { $0.address == entry.outerDestination })
        #expect(entry.source == DE.client && entry.destination == DE.vip && entry.destinationPort == 53,
                "the inner addresses and ports stay")
        #expect(entry.ipDelta == 0 && entry.l4Delta == 0)
        #expect(entry.sourceMAC == DE.lvsMAC)
        let action = entry.actionBytes
        #expect(action.count == 64 && action[30] == 1 && action[31] == 1)
        #expect(Array(action[56..<64]) == DE.ip(DE.lvs) + DE.ip(entry.outerDestination))
    }

    @Test func whatTheProgramCannotRepeatIsRefused() throws {
        let driver = FPT.driver()
        let p = FPT.packet(from: DE.client, sport: 40001, tcp: false, payload: Array(repeating: 7, count: 30))
        // Without DF the outer identification is the director's counter.
        #expect(throws: FastPathEntry.Refusal.tunnelWithoutDF) {
            try FPT.derive(p.with { $0.df = false }.frame, driver)
        }
        // Ethernet padding the director leaves behind.
        #expect(throws: FastPathEntry.Refusal.padded) {
            try FPT.derive(p.with { $0.payload = []; $0.padTo = 60 }.frame, driver)
        }
        // The director's own output, changed in one place each.
        let before = p.frame
        let after = driver.send(before, on: PortID(0), at: .seconds(2)).frame
        func refused(_ why: FastPathEntry.Refusal, _ change: (inout [UInt8]) -> Void) {
            var b = after
            change(&b)
            #expect(throws: why) {
                try FastPathEntry.derive(before: before, after: b, ingressSlot: 0, egressSlot: 0, maxLength: 1500,
                                         generation: 1)
            }
        }
        func outerChecksum(_ b: inout [UInt8]) {
            b[24] = 0; b[25] = 0
            let c = ~DE.sum(b[14..<34])
            b[24] = UInt8(c >> 8); b[25] = UInt8(c & 0xff)
        }
        refused(.tunnelHeader) { $0[19] = 1; outerChecksum(&$0) }                     // an identification
        refused(.tunnelHeader) { $0[22] -= 1; outerChecksum(&$0) }                    // outer TTL ≠ inner
        refused(.tunnelHeader) { $0[15] = 0x10; outerChecksum(&$0) }                  // TOS not the inner's
        refused(.malformed) { $0[24] ^= 1 }                                           // outer checksum (parsed)
        refused(.tunnelHeader) { $0.append(0) }                                       // a longer frame
        refused(.otherFieldChanged) { $0[$0.count - 1] ^= 1 }                         // the inner payload
        refused(.ttl) { $0[34 + 8] += 1 }                                             // the inner TTL kept
        // What the director will call repeatable is what derive takes.
        for (frame, repeatable) in [(p.frame, true), (p.with { $0.df = false }.frame, false),
                                    (p.with { $0.payload = []; $0.padTo = 60 }.frame, false)] {
            let parsed = try frame.withUnsafeBytes { bytes throws(WireError) in try FrameParser().parse(bytes) }
            #expect(frame.withUnsafeBytes { Director.tunnelRepeatable(parsed, $0) } == repeatable)
            #expect((try? FPT.derive(frame, driver, at: 3)) != nil || !repeatable)
        }
        #expect(throws: FastPathEntry.Refusal.lengthChanged) {
            try FastPathEntry.derive(before: before, after: before + Array(repeating: 0, count: 20), ingressSlot: 0,
                                     egressSlot: 0, maxLength: 1500, generation: 1)
        }
    }
}

/// The director's TUN against the lab's XDP program, frame for frame:
/// random connections (TCP with ACK/PSH, UDP; two reals on the link, two
/// behind the gateway) through two directors (MTU 1500 and 1000, slots 0
/// and 1); each connection's first established frame makes the entry, and
/// later frames (random TOS, TTL, length, DF) go through both: those the
/// program may take must come out as the director's bytes, the rest (no
/// DF, Ethernet padding, TTL 1, too long once encapsulated) untouched.
/// Root, as `FastPathDifferentialTests`.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to load BPF programs"))
struct FastPathTunnelDifferentialTests {
    @Test func theDirectorsTunnelIsRepeatedByteForByte() throws {
        try FastPathHarness.withProgram(ports: 2, tag: "tn") { program, indexes in
            try program.setFastPath(enabled: true, generation: 1)
            let drivers = FPT.mtus.map { FPT.driver(mtu: $0) }
            var r = SeededRandom(seed: 2003)
            var t = 1.0
            var compared = 0, wentUp = 0
            var reals = Set<IPv4Address>()
            for n in 0..<150 {
                let slot = r.below(FPT.mtus.count), driver = drivers[slot], mtu = FPT.mtus[slot]
                let tcp = r.below(2) == 0, udpChecksum = r.below(4) != 0
                let client = IPv4Address(123, UInt8(r.below(256)), UInt8(r.below(256)), UInt8(1 + r.below(250)))
                let sport = UInt16(10000 + n)
                if tcp {
                    let syn = FPT.packet(from: client, sport: sport, tcp: true, flags: DE.syn)
                    try #require(driver.send(syn.frame, on: PortID(0), at: .seconds(t)).verdict == .forward(PortID(0)))
                }
                t += 0.001
                let first = FPT.packet(from: client, sport: sport, tcp: tcp, payload: [1, 2, 3, 4, 5, 6],
                                       udpChecksum: udpChecksum).frame
                let entry = try FPT.derive(first, driver, slot: UInt16(slot), maxLength: mtu, at: t)
                t += 0.001
                #expect(entry.encapsulates)
                reals.insert(entry.outerDestination)
                try program.installFastPathFlow(key: entry.key.bytes, action: entry.actionBytes)
                for _ in 0..<6 {
                    let short = r.below(6) == 0   // padded to the Ethernet minimum
                    let p = FPT.packet(from: client, sport: sport, tcp: tcp, flags: r.below(2) == 0 ? DE.ack : DE.ack | DE.psh,
                                       payload: (0..<(short ? r.below(6) : r.below(1460))).map { _ in r.byte() },
                                       ttl: r.below(10) == 0 ? 1 : UInt8(2 + r.below(254)), tos: r.byte(),
                                       df: r.below(5) != 0, id: UInt16(truncatingIfNeeded: r.next()),
                                       udpChecksum: udpChecksum).with { $0.padTo = short ? 60 : 0 }
                    let frame = p.frame, length = p.ipPacket.count
                    if p.df && frame.count == 14 + length && p.ttl >= 2 && length + 20 <= mtu {
                        let slow = driver.send(frame, on: PortID(0), at: .seconds(t))
                        let fast = try program.testRun(frame, interfaceIndex: indexes[slot])
                        #expect(slow.verdict == .forward(PortID(0)), "\(entry.key): \(slow.verdict)")
                        #expect(fast.action == FastPathHarness.redirect, "\(entry.key): XDP action \(fast.action)")
                        #expect(fast.frame == slow.frame, "\(entry.key): the fast path's frame differs from the director's")
                        compared += 1
                    } else {
                        let forwarded = program.fastPathStatistics().forwarded
                        let fast = try program.testRun(frame, interfaceIndex: indexes[slot])
                        let why = "df \(p.df), \(frame.count) bytes for \(length), TTL \(p.ttl), MTU \(mtu)"
                        #expect(fast.action != FastPathHarness.redirect, "\(why): redirected")
                        #expect(fast.frame == frame, "\(why): the program changed the frame")
                        #expect(program.fastPathStatistics().forwarded == forwarded, "\(why): counted as fast")
                        wentUp += 1
                    }
                    t += 0.001
                }
            }
            #expect(reals == Set(FPT.reals.map(\.address)), "every real: \(reals)")
            #expect(compared >= 400 && wentUp >= 150, "compared \(compared), went up \(wentUp)")
            #expect(program.fastPathStatistics().forwarded == UInt64(compared))
            print("fast path TUN: \(compared) frames the director's byte for byte, \(wentUp) left to it")
        }
    }
}
