import Glibc
import LinuxNet
import Testing
import Wire
@testable import Datapath

/// `FastPathDifferentialTests` for the director and the switch: random
/// flows through the element until it says a frame may be repeated
/// (`takeFastPathCacheable`); that frame makes the entry, and every later
/// frame of the flow goes through the element and through the lab's XDP
/// program (BPF_PROG_TEST_RUN) and must come out the same bytes, by the
/// same port. Root, as that suite.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to load BPF programs"))
struct FastPathElementDifferentialTests {
    typealias H = FastPathHarness

    /// The frame BEFORE (on PORT) made AFTER, out of EGRESS: its entry, installed.
    static func install(_ before: [UInt8], _ after: ElementDriver.Outcome, on port: Int, generation: UInt32,
                        program: XDPProgram) throws -> FastPathEntry {
        guard case .forward(let egress) = after.verdict else { throw FastPathEntry.Refusal.malformed }
        let entry = try FastPathEntry.derive(before: before, after: after.frame, ingressSlot: UInt16(port),
                                             egressSlot: UInt16(egress.rawValue), maxLength: 1500, generation: generation)
        try program.installFastPathFlow(key: entry.key.bytes, action: entry.actionBytes)
        return entry
    }

    /// 150 connections over NAT, DR and FULLNAT, TCP and UDP, three reals:
    /// each opened through the director, then its first repeatable frame
    /// each way makes an entry, then three more each way are compared.
    @Test func theDirectorsFastPathIsItsSlowPathByteForByte() throws {
        try H.withProgram(ports: 2, tag: "d") { program, indexes in
            let (driver, director) = FPD.driver()
            let generation = director.fastPathGeneration
            try program.setFastPath(enabled: true, generation: generation)
            var r = SeededRandom(seed: 21)
            var t = 1.0
            var compared = 0, entries = 0
            let cached = FPD.services.filter { $0.mode != .tun }
            var lastFlow: (H.Flow, FastPathEntry)? = nil
            for n in 0..<150 {
                let s = cached[r.below(cached.count)]
                let client = IPv4Address(123, UInt8(r.below(256)), UInt8(r.below(256)), UInt8(1 + r.below(250)))
                let flow = FPD.flow(s, client: client, port: UInt16(10000 + n), udpChecksum: r.below(4) != 0)
                let back = FPD.open(flow, s, driver, &r, at: &t)
                for f in [flow] + (back.map { [$0] } ?? []) {
                    let first = H.frame(f, &r)
                    let out = driver.send(first, on: PortID(f.port), at: .seconds(t))
                    t += 0.001
                    try #require(director.takeFastPathCacheable(), "\(s.mode) \(f)")
                    let entry = try Self.install(first, out, on: f.port, generation: generation, program: program)
                    entries += 1
                    for _ in 0..<3 {
                        try H.expectSame(H.frame(f, &r), on: f.port, entry: entry, driver: driver, at: .seconds(t),
                                         program: program, indexes: indexes)
                        t += 0.001
                        compared += 1
                    }
                    if f.port == 0 && s.tcp { lastFlow = (f, entry) }
                }
            }
            #expect(director.fastPathGeneration == generation, "nothing the entries rest on changed")
            #expect(program.fastPathStatistics().forwarded == UInt64(compared))
            print("fast path: \(compared) frames of \(entries) director entries, director and XDP program byte for byte")

            // What the director must see goes up: SYN/FIN/RST, no entry, an older generation.
            let (flow, _) = try #require(lastFlow)
            for flags: TCPFlags in [.syn, [.fin, .ack], [.rst, .ack]] {
                try H.goesUp(H.frame(flow, &r, flags: flags), on: indexes[0], "TCP \(flags)", program: program)
            }
            var unknown = flow
            unknown.sourcePort = 9999
            try H.goesUp(H.frame(unknown, &r), on: indexes[0], "no entry", program: program)
            let good = H.frame(flow, &r)
            #expect(try program.testRun(good, interfaceIndex: indexes[0]).action == H.redirect)
            let real = try #require(director.realServer(FPD.reals[0].0, port: 8080, service: FPD.services[0].vip,
                                                        servicePort: 80))
            try director.setWeight(5, for: real)
            try program.setFastPath(enabled: true, generation: director.fastPathGeneration)
            try H.goesUp(good, on: indexes[0], "an entry of an older generation", program: program)
        }
    }

    /// 200 flows between hosts behind three ports of a learning switch.
    @Test func theSwitchsFastPathIsItsSlowPathByteForByte() throws {
        try H.withProgram(ports: 3, tag: "s") { program, indexes in
            let sw = LearningSwitch(ports: 3)
            let driver = ElementDriver(sw)
            let hosts = (0..<9).map { (mac: MACAddress(0x02, 0, 0, 0, 1, UInt8($0)), port: $0 % 3) }
            for h in hosts {
                _ = driver.send(LearningSwitchTests.frame(to: .broadcast, from: h.mac), on: PortID(h.port), at: .seconds(1))
            }
            let generation = sw.fastPathGeneration
            try program.setFastPath(enabled: true, generation: generation)
            var r = SeededRandom(seed: 22)
            var t = 2.0
            var compared = 0
            var last: (H.Flow, FastPathEntry)? = nil
            for _ in 0..<200 {
                let a = hosts[r.below(hosts.count)]
                var b = hosts[r.below(hosts.count)]
                while b.port == a.port { b = hosts[r.below(hosts.count)] }
                let flow = H.Flow(port: a.port, sourceMAC: a.mac, destinationMAC: b.mac,
                                  source: IPv4Address(10, 1, UInt8(r.below(256)), UInt8(1 + r.below(250))),
                                  destination: IPv4Address(10, 2, UInt8(r.below(256)), UInt8(1 + r.below(250))),
                                  tcp: r.below(2) == 0, sourcePort: UInt16(1024 + r.below(60000)),
                                  destinationPort: UInt16(1 + r.below(65000)), udpChecksum: r.below(4) != 0)
                let first = H.frame(flow, &r)
                let out = driver.send(first, on: PortID(flow.port), at: .seconds(t))
                try #require(out.verdict == .forward(PortID(b.port)) && sw.takeFastPathCacheable(), "\(flow)")
                let entry = try Self.install(first, out, on: flow.port, generation: generation, program: program)
                for _ in 0..<3 {
                    try H.expectSame(H.frame(flow, &r), on: flow.port, entry: entry, driver: driver, at: .seconds(t),
                                     program: program, indexes: indexes)
                    compared += 1
                }
                t += 0.01
                last = (flow, entry)
            }
            #expect(sw.fastPathGeneration == generation, "nothing learned moved")
            #expect(program.fastPathStatistics().forwarded == UInt64(compared))
            print("fast path: \(compared) frames of 200 switch flows, switch and XDP program byte for byte")

            let (flow, _) = try #require(last)
            if flow.tcp {
                try H.goesUp(H.frame(flow, &r, flags: .syn), on: indexes[flow.port], "SYN", program: program)
            }
            // The destination moves: the generation moves, the entry goes stale.
            _ = driver.send(LearningSwitchTests.frame(to: .broadcast, from: flow.destinationMAC),
                            on: PortID(flow.port), at: .seconds(t))
            #expect(sw.fastPathGeneration != generation)
            try program.setFastPath(enabled: true, generation: sw.fastPathGeneration)
            try H.goesUp(H.frame(flow, &r), on: indexes[flow.port], "an entry of an older generation", program: program)
        }
    }

    /// A frame of a cached flow for another MAC (an upstream router moved
    /// the flow to another next hop behind the same port) is the switch's
    /// to decide: the program's key holds the MACs as received.
    @Test func aFrameOfACachedFlowForAnotherMACIsTheSwitchsDecision() throws {
        try H.withProgram(ports: 3, tag: "m") { program, indexes in
            let sw = LearningSwitch(ports: 3)
            let driver = ElementDriver(sw)
            let a = MACAddress(0x02, 0, 0, 0, 2, 0), b = MACAddress(0x02, 0, 0, 0, 2, 1), c = MACAddress(0x02, 0, 0, 0, 2, 2)
            for (mac, port) in [(a, 0), (b, 1), (c, 2)] {
                _ = driver.send(LearningSwitchTests.frame(to: .broadcast, from: mac), on: PortID(port), at: .seconds(1))
            }
            try program.setFastPath(enabled: true, generation: sw.fastPathGeneration)
            var r = SeededRandom(seed: 23)
            var flow = H.Flow(port: 0, sourceMAC: a, destinationMAC: b, source: IPv4Address(10, 1, 0, 1),
                              destination: IPv4Address(10, 2, 0, 1), tcp: true, sourcePort: 1000, destinationPort: 80,
                              udpChecksum: true)
            let first = H.frame(flow, &r)
            let out = driver.send(first, on: PortID(0), at: .seconds(2))
            #expect(sw.takeFastPathCacheable())
            _ = try Self.install(first, out, on: 0, generation: sw.fastPathGeneration, program: program)
            flow.destinationMAC = c
            let moved = H.frame(flow, &r)
            let slow = driver.send(moved, on: PortID(0), at: .seconds(3))
            #expect(slow.verdict == .forward(PortID(2)))
            let fast = try program.testRun(moved, interfaceIndex: indexes[0])
            // The key holds the MACs as received: another destination MAC is
            // another flow, which goes up to the switch untouched.
            #expect(fast.action != H.redirect && fast.frame == moved, "rewritten to the cached MACs")
        }
    }
}
