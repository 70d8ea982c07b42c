import Foundation
import Glibc
import LinuxNet
import Testing
import Wire
@testable import Datapath

/// The fast path against the element it stands in for, frame for frame:
/// random flows through the router of RouterTests' `Lab` (static routes,
/// ECMP, static NAT both ways, two MTUs). The first frame of each flow goes
/// through the router; what the router did to it becomes a `fast_flows`
/// entry (`FastPathEntry.derive`); every later frame of the flow goes
/// through both the router and the lab's XDP program (BPF_PROG_TEST_RUN, no
/// live frames: nothing is sent), and the two outputs must be the same
/// bytes, out of the same port. Frames the program must leave to the
/// element (TTL 1, SYN/FIN/RST, too long, a bad header checksum, an entry
/// of an older generation) must come out of it untouched and uncounted.
///
/// Root: loading a BPF program and attaching it (to veths in a `wl…`
/// namespace of the test's own, which BPF_PROG_TEST_RUN needs as the
/// frames' ingress interfaces) takes CAP_BPF and CAP_NET_ADMIN.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to load BPF programs"))
struct FastPathDifferentialTests {
    static let redirect: UInt32 = 4   // XDP_REDIRECT
    static let ports = 3

    /// A namespace with one veth end per router port (`p0`…), the program
    /// attached to each; runs BODY inside it with the program and the
    /// interface index of each port. TAG keeps the namespaces of suites
    /// that run at once apart.
    static func withProgram(tag: String = "", _ body: (XDPProgram, [Int32]) throws -> Void) throws {
        let ns = "wlfpd\(getpid())\(tag)"
        func ip(_ args: String...) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "ip \(args.joined(separator: " "))")
        }
        _ = try? NetworkNamespace.deleteIfExists(ns)
        try NetworkNamespace.create(ns)
        defer { _ = try? NetworkNamespace.deleteIfExists(ns) }
        for i in 0..<ports {
            try ip("-n", ns, "link", "add", "p\(i)", "type", "veth", "peer", "name", "q\(i)")
            try ip("-n", ns, "link", "set", "p\(i)", "up")
            try ip("-n", ns, "link", "set", "q\(i)", "up")
        }
        let program = try XDPProgram()
        defer { program.close() }
        try NetworkNamespace.run(ns) {
            var indexes: [Int32] = []
            for i in 0..<ports {
                let index = Int32(bitPattern: if_nametoindex("p\(i)"))
                try #require(index > 0)
                let slot = try program.attach(interfaceIndex: index, name: "p\(i)")
                try #require(slot == UInt32(i), "slots follow the ports")
                try program.setFastPathEgress(slot: slot, interfaceIndex: index)
                indexes.append(index)
            }
            try body(program, indexes)
        }
    }

    typealias Random = SeededRandom

    /// One flow: where it enters and its 5-tuple.
    struct Flow {
        var port: Int
        var sourceMAC: MACAddress
        var destinationMAC: MACAddress
        var source: IPv4Address
        var destination: IPv4Address
        var tcp: Bool
        var sourcePort: UInt16
        var destinationPort: UInt16
        var udpChecksum: Bool
    }

    /// Flows the router forwards: through gateways, to connected hosts,
    /// over ECMP, and through the static NAT in both directions.
    static func randomFlow(_ r: inout Random) -> Flow {
        let kinds: [(port: Int, src: MACAddress, dst: MACAddress, from: IPv4Address, to: IPv4Address)] = [
            (0, Lab.clientMAC, Lab.r0, Lab.client, IPv4Address(198, 51, 100, UInt8(1 + r.below(120)))),
            (0, Lab.clientMAC, Lab.r0, Lab.client, IPv4Address(198, 51, 100, UInt8(129 + r.below(120)))),
            (0, Lab.clientMAC, Lab.r0, Lab.client, IPv4Address(203, 0, 113, UInt8(1 + r.below(250)))),
            (0, Lab.clientMAC, Lab.r0, Lab.client, Lab.h2),
            (0, Lab.clientMAC, Lab.r0, Lab.client, Lab.publicServer),   // NAT in
            (1, Lab.serverMAC, Lab.r1, Lab.server, Lab.client),         // NAT out
            (1, Lab.h1MAC, Lab.r1, Lab.h1, Lab.client),
            (2, Lab.h3MAC, Lab.r2, Lab.h3, Lab.client),
        ]
        let k = kinds[r.below(kinds.count)]
        return Flow(port: k.port, sourceMAC: k.src, destinationMAC: k.dst, source: k.from, destination: k.to,
                    tcp: r.below(2) == 0, sourcePort: UInt16(1024 + r.below(60000)), destinationPort: UInt16(1 + r.below(65000)),
                    udpChecksum: r.below(4) != 0)
    }

    /// A frame of FLOW: random TTL, identification, payload; TCP with ACK (and PSH).
    static func frame(_ f: Flow, _ r: inout Random, ttl: UInt8? = nil, flags: TCPFlags? = nil, payload: Int? = nil) -> [UInt8] {
        let ip = Frames.IP(source: f.source, destination: f.destination, ttl: ttl ?? UInt8(2 + r.below(254)),
                           identification: UInt16(truncatingIfNeeded: r.next()), dontFragment: r.below(2) == 0)
        let bytes = (0..<(payload ?? r.below(700))).map { _ in r.byte() }
        if f.tcp {
            return Frames.tcp(ip, sport: f.sourcePort, dport: f.destinationPort,
                              flags: flags ?? (r.below(2) == 0 ? .ack : [.ack, .psh]), payload: bytes,
                              dst: f.destinationMAC, src: f.sourceMAC)
        }
        return Frames.udp(ip, sport: f.sourcePort, dport: f.destinationPort, payload: bytes,
                          dst: f.destinationMAC, src: f.sourceMAC, checksum: f.udpChecksum)
    }

    static let mtus = [1500, 1500, 1000]

    @Test func theRoutersFastPathIsItsSlowPathByteForByte() throws {
        try Self.withProgram { program, indexes in
            try program.setFastPath(enabled: true, generation: 1)
            let driver = Lab.resolvedDriver()
            var r = Random(seed: 15)
            var installed = 0, compared = 0
            var t = 1.0
            for _ in 0..<300 {
                let flow = Self.randomFlow(&r)
                let first = Self.frame(flow, &r)
                let out = driver.send(first, on: PortID(flow.port), at: .seconds(t))
                t += 0.001
                guard case .forward(let egress) = out.verdict else {
                    Issue.record("the router did not forward a frame of \(flow): \(out.verdict)")
                    continue
                }
                let entry = try FastPathEntry.derive(before: first, after: out.frame, ingressSlot: UInt16(flow.port),
                                                     egressSlot: UInt16(egress.rawValue),
                                                     maxLength: Self.mtus[egress.rawValue], generation: 1)
                try program.installFastPathFlow(key: entry.key.bytes, action: entry.actionBytes)
                installed += 1
                for _ in 0..<3 {
                    let next = Self.frame(flow, &r, payload: r.below(Self.mtus[egress.rawValue] - 60))
                    let slow = driver.send(next, on: PortID(flow.port), at: .seconds(t))
                    t += 0.001
                    let fast = try program.testRun(next, interfaceIndex: indexes[flow.port])
                    #expect(slow.verdict == .forward(egress), "\(entry.key)")
                    #expect(fast.action == Self.redirect, "\(entry.key): XDP action \(fast.action)")
                    #expect(fast.frame == slow.frame, "\(entry.key): the fast path's frame differs from the router's")
                    compared += 1
                }
                let counters = program.fastPathFlowCounters(key: entry.key.bytes)
                #expect(counters?.packets ?? 0 >= 3, "\(entry.key): \(String(describing: counters))")
            }
            #expect(installed >= 250, "flows installed: \(installed)")
            // Flows that repeat a 5-tuple share an entry: what was compared is what the program counted.
            #expect(program.fastPathStatistics().forwarded == UInt64(compared))
            print("fast path: \(compared) frames of \(installed) flows, router and XDP program byte for byte")
        }
    }

    @Test func framesTheElementMustSeeGoUpUntouched() throws {
        try Self.withProgram { program, indexes in
            try program.setFastPath(enabled: true, generation: 7)
            let driver = Lab.resolvedDriver()
            var r = Random(seed: 99)
            // UDP client → a host behind h3 (egress MTU 1000), with a checksum.
            var flow = Self.randomFlow(&r)
            flow = Flow(port: 0, sourceMAC: Lab.clientMAC, destinationMAC: Lab.r0, source: Lab.client,
                        destination: Lab.viaH3, tcp: true, sourcePort: 40001, destinationPort: 443, udpChecksum: true)
            let first = Self.frame(flow, &r, ttl: 64, flags: .ack, payload: 100)
            let out = driver.send(first, on: PortID(0), at: .seconds(1))
            try #require(out.verdict == .forward(PortID(2)))
            let entry = try FastPathEntry.derive(before: first, after: out.frame, ingressSlot: 0, egressSlot: 2,
                                                 maxLength: 1000, generation: 7)
            #expect(entry.decrementsTTL && entry.destinationMAC == Lab.h3MAC && entry.sourceMAC == Lab.r2)
            try program.installFastPathFlow(key: entry.key.bytes, action: entry.actionBytes)

            func goesUp(_ frame: [UInt8], _ why: String) throws {
                let before = program.fastPathStatistics().forwarded
                let result = try program.testRun(frame, interfaceIndex: indexes[0])
                #expect(result.action != Self.redirect, "\(why): redirected")
                #expect(result.frame == frame, "\(why): the program changed the frame")
                #expect(program.fastPathStatistics().forwarded == before, "\(why): counted as fast")
            }
            try goesUp(Self.frame(flow, &r, ttl: 1, flags: .ack, payload: 100), "TTL 1")
            for flags: TCPFlags in [.syn, [.fin, .ack], [.rst, .ack]] {
                try goesUp(Self.frame(flow, &r, ttl: 64, flags: flags, payload: 100), "TCP \(flags)")
            }
            try goesUp(Self.frame(flow, &r, ttl: 64, flags: .ack, payload: 1000), "longer than the egress MTU")
            var corrupt = Self.frame(flow, &r, ttl: 64, flags: .ack, payload: 10)
            corrupt[24] ^= 0x01   // the header checksum
            try goesUp(corrupt, "a bad IPv4 header checksum")
            var other = flow
            other.destinationPort = 444
            try goesUp(Self.frame(other, &r, ttl: 64, flags: .ack, payload: 10), "no entry")
            // The same frame is fast now, and goes up once the generation moves on.
            let good = Self.frame(flow, &r, ttl: 64, flags: .ack, payload: 10)
            #expect(try program.testRun(good, interfaceIndex: indexes[0]).action == Self.redirect)
            try program.setFastPath(enabled: true, generation: 8)
            let stale = program.fastPathStatistics().stale
            try goesUp(good, "an entry of an older generation")
            #expect(program.fastPathStatistics().stale == stale + 1)
            try program.setFastPath(enabled: false, generation: 7)
            try goesUp(good, "the fast path off")
        }
    }

    /// What the program cannot repeat is refused when the entry is made.
    @Test func entriesAreRefusedForWhatTheProgramCannotRepeat() throws {
        var r = Random(seed: 3)
        let flow = Flow(port: 0, sourceMAC: Lab.clientMAC, destinationMAC: Lab.r0, source: Lab.client,
                        destination: Lab.viaH1, tcp: false, sourcePort: 5000, destinationPort: 53, udpChecksum: true)
        let a = Self.frame(flow, &r, ttl: 64, payload: 20)
        var b = a
        b[b.count - 1] ^= 0x10   // a payload byte
        #expect(throws: FastPathEntry.Refusal.otherFieldChanged) {
            try FastPathEntry.derive(before: a, after: b, ingressSlot: 0, egressSlot: 1, maxLength: 1500, generation: 1)
        }
        #expect(throws: FastPathEntry.Refusal.lengthChanged) {
            try FastPathEntry.derive(before: a, after: a + [0], ingressSlot: 0, egressSlot: 1, maxLength: 1500, generation: 1)
        }
        let syn = Self.frame(Flow(port: 0, sourceMAC: Lab.clientMAC, destinationMAC: Lab.r0, source: Lab.client,
                                  destination: Lab.viaH1, tcp: true, sourcePort: 1, destinationPort: 2, udpChecksum: true),
                             &r, ttl: 64, flags: .syn, payload: 0)
        #expect(throws: FastPathEntry.Refusal.tcpStateChange) {
            try FastPathEntry.derive(before: syn, after: syn, ingressSlot: 0, egressSlot: 1, maxLength: 1500, generation: 1)
        }
        let ping = Frames.echo(Frames.IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        #expect(throws: FastPathEntry.Refusal.notTCPOrUDP) {
            try FastPathEntry.derive(before: ping, after: ping, ingressSlot: 0, egressSlot: 1, maxLength: 1500, generation: 1)
        }
    }
}

/// The generations the fast path's entries rest on: they change when a
/// decision may no longer hold, and only then (a refresh changes nothing),
/// and an element says which forwarded frames may be repeated.
struct FastPathGenerationTests {
    @Test func theRoutersGenerationFollowsRoutesNeighboursAndLinks() {
        let driver = Lab.resolvedDriver()
        let router = driver.element as! Router
        let udp = Frames.udp(Frames.IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        let g0 = router.fastPathGeneration
        #expect(driver.send(udp, on: PortID(0), at: .seconds(1)).verdict == .forward(PortID(1)))
        #expect(router.takeFastPathCacheable(), "a resolved forward may be repeated")
        #expect(!router.takeFastPathCacheable(), "reading clears it")
        let ping = Frames.echo(Frames.IP(source: Lab.client, destination: Lab.r0IP), dst: Lab.r0, src: Lab.clientMAC)
        _ = driver.send(ping, on: PortID(0), at: .seconds(1))
        #expect(!router.takeFastPathCacheable(), "an answer to the router itself is not a forward")
        #expect(router.fastPathGeneration == g0, "forwarding changes nothing")
        Lab.resolve(driver, Lab.h1, Lab.h1MAC, port: 1, at: 2)
        #expect(router.fastPathGeneration == g0, "a neighbour refreshed unchanged")
        Lab.resolve(driver, Lab.h1, MACAddress(0x02, 0, 0, 0, 0, 0x99), port: 1, at: 3)
        let g1 = router.fastPathGeneration
        #expect(g1 != g0, "a neighbour's new MAC")
        router.setLink(PortID(2), up: false)
        #expect(router.fastPathGeneration != g1, "a link down takes routes with it")
    }

    @Test func theSwitchsGenerationFollowsItsLearnedMACs() {
        let sw = LearningSwitch(ports: 3, configuration: .init(agingTime: 10))
        let driver = ElementDriver(sw)
        let a = MACAddress(0x02, 0, 0, 0, 0, 0x0a), b = MACAddress(0x02, 0, 0, 0, 0, 0x0b)
        let g0 = sw.fastPathGeneration
        _ = driver.send(LearningSwitchTests.frame(to: b, from: a), on: PortID(0), at: .seconds(1))
        #expect(!sw.takeFastPathCacheable(), "a flood is not a decision to repeat")
        let g1 = sw.fastPathGeneration
        #expect(g1 != g0, "a MAC learned")
        #expect(driver.send(LearningSwitchTests.frame(to: a, from: b), on: PortID(1), at: .seconds(2)).verdict == .forward(PortID(0)))
        #expect(sw.takeFastPathCacheable())
        let g2 = sw.fastPathGeneration
        _ = driver.send(LearningSwitchTests.frame(to: a, from: b), on: PortID(1), at: .seconds(3))
        #expect(sw.fastPathGeneration == g2, "a MAC refreshed where it was")
        _ = driver.send(LearningSwitchTests.frame(to: a, from: b), on: PortID(2), at: .seconds(4))
        #expect(sw.fastPathGeneration != g2, "a MAC moved")
        let g3 = sw.fastPathGeneration
        _ = driver.tick(at: .seconds(30))
        #expect(sw.fastPathGeneration != g3, "MACs aged out")
    }
}
