import Testing
import Wire
@testable import Datapath

/// VRRPv3 (RFC 9568) on the injected clock: several nodes' groups on one
/// segment, adverts delivered between them through the wire checks, times
/// checked against the RFC's formulas to the nanosecond.
@Suite struct VRRPTests {
    static let vip = IPv4Address(10, 0, 0, 100)
    static func mac(_ n: UInt8) -> MACAddress { MACAddress(0x02, 0, 0, 0, 0, n) }
    static func ip(_ n: UInt8) -> IPv4Address { IPv4Address(10, 0, 0, n) }

    /// One VRRP node on the segment: its groups and where its frames went.
    final class Node {
        var groups: VRRPGroups
        var up = true
        init(_ c: VRRPConfiguration, n: UInt8) {
            groups = VRRPGroups([VRRPInstance(c, portMAC: VRRPTests.mac(n), primaryAddress: VRRPTests.ip(n))])
        }
        var g: VRRPInstance { groups.instances[0] }
    }

    /// Nodes on one segment: frames reach every other running node at once.
    final class Segment {
        var nodes: [Node]
        var now = Instant.zero
        var emitter = Emitter()
        /// Every frame sent: (time, sender index, bytes).
        var frames: [(at: Instant, from: Int, bytes: [UInt8])] = []
        var refused: [DropReason] = []
        /// False: a partitioned segment, frames reach nobody.
        var connected = true
        init(_ nodes: [Node]) { self.nodes = nodes }

        /// Runs timers and deliveries up to `t`.
        func run(until t: Instant) {
            while true {
                var next: (Int, Instant)?
                for (i, n) in nodes.enumerated() where n.up {
                    if let x = n.groups.nextTimer, next.map({ x < $0.1 }) ?? true { next = (i, x) }
                }
                guard let (i, at) = next, at <= t else { now = t; return }
                now = max(now, at)
                nodes[i].groups.tick(now: now, emit: &emitter)
                deliver(from: i)
            }
        }

        func run(for seconds: Double) { run(until: now.adding(seconds: seconds)) }

        func deliver(from sender: Int) {
            var out: [[UInt8]] = []
            for k in 0..<emitter.count { out.append(Array(emitter.frame(at: k).bytes)) }
            emitter.removeAll()
            for bytes in out {
                frames.append((now, sender, bytes))
                guard connected else { continue }
                for (j, n) in nodes.enumerated() where j != sender && n.up { give(bytes, to: j) }
            }
        }

        func give(_ bytes: [UInt8], to j: Int) {
            bytes.withUnsafeBytes { b in
                guard let p = try? FrameParser().parse(b), VRRPGroups.isAdvert(p) else { return }
                if let r = nodes[j].groups.receive(b, p, port: 0, now: now, emit: &emitter) { refused.append(r) }
            }
            deliver(from: j)
        }

        func resign(_ i: Int) {
            nodes[i].groups.resign(now: now, emit: &emitter)
            deliver(from: i)
        }

        /// Adverts sent by node `i`, with their priority.
        func adverts(from i: Int) -> [(at: Instant, priority: UInt8)] {
            frames.filter { $0.from == i && $0.bytes.count > 34 && $0.bytes[23] == 112 }.map { ($0.at, $0.bytes[36]) }
        }
        func gratuitousARPs(from i: Int) -> [(at: Instant, bytes: [UInt8])] {
            frames.filter { $0.from == i && $0.bytes[12] == 0x08 && $0.bytes[13] == 0x06 }.map { ($0.at, $0.bytes) }
        }
    }

    static func config(_ priority: UInt8, interval: UInt16 = 10, preempt: Bool = true, delay: Double = 0,
                       vmac: Bool = false, vips: [IPv4Address] = [vip]) -> VRRPConfiguration {
        VRRPConfiguration(vrid: 7, priority: priority, vips: vips, interval: interval, preempt: preempt,
                          preemptDelay: UInt64(delay * 1e9), vmac: vmac, port: PortID(0))
    }

    /// Skew_Time and Master_Down_Interval of a priority at 0.1 s, in ns.
    static func skew(_ p: UInt64, cs: UInt64 = 10) -> UInt64 { (256 - p) * cs * 10_000_000 / 256 }
    static func down(_ p: UInt64, cs: UInt64 = 10) -> UInt64 { 3 * cs * 10_000_000 + skew(p, cs: cs) }

    @Test func timersFollowTheRFC() {
        let g = VRRPInstance(Self.config(200, interval: 10), portMAC: Self.mac(1), primaryAddress: Self.ip(1))
        #expect(g.skewTime == 21_875_000)          // (256−200)·10 cs / 256 = 2.1875 cs
        #expect(g.masterDownInterval == 321_875_000)
        let slow = VRRPInstance(Self.config(100, interval: 100), portMAC: Self.mac(1), primaryAddress: Self.ip(1))
        #expect(slow.masterDownInterval == 3_000_000_000 + 609_375_000)
    }

    @Test func higherPriorityIsElectedAndTheOtherLearnsIt() {
        let s = Segment([Node(Self.config(200), n: 1), Node(Self.config(100), n: 2)])
        s.run(for: 5)
        #expect(s.nodes[0].g.state == .master)
        #expect(s.nodes[1].g.state == .backup)
        #expect(s.nodes[1].g.masterAddress == Self.ip(1) && s.nodes[1].g.masterPriority == 200)
        // A became master when its Master_Down_Timer ran out, never B.
        #expect(s.nodes[0].g.transitions.map(\.to) == [.backup, .master])
        #expect(s.nodes[0].g.transitions[1].at == Instant(nanoseconds: Self.down(200)))
        #expect(s.nodes[1].g.transitions.map(\.to) == [.backup])
        // Adverts every 0.1 s, all with priority 200, none from B.
        let a = s.adverts(from: 0)
        #expect(a.count == 47 && a.allSatisfy { $0.priority == 200 })
        #expect(zip(a, a.dropFirst()).allSatisfy { $1.at.nanoseconds - $0.at.nanoseconds == 100_000_000 })
        #expect(s.adverts(from: 1).isEmpty)
        #expect(s.refused.isEmpty)
    }

    @Test func equalPrioritiesElectTheHigherAddress() {
        let s = Segment([Node(Self.config(100), n: 1), Node(Self.config(100), n: 2)])
        s.connected = false          // both become master, then meet
        s.run(for: 1)
        #expect(s.nodes[0].g.state == .master && s.nodes[1].g.state == .master)
        s.connected = true
        s.run(for: 3)
        #expect(s.nodes[0].g.transitions.last!.reason.contains("equal priority 100 and a higher address"))
        #expect(s.nodes[0].g.state == .backup)
        #expect(s.nodes[1].g.state == .master)
        #expect(s.nodes[0].g.masterAddress == Self.ip(2))
    }

    @Test func backupTakesOverAfterExactlyMasterDownInterval() {
        let s = Segment([Node(Self.config(200), n: 1), Node(Self.config(100), n: 2)])
        s.run(for: 2)
        let last = s.adverts(from: 0).last!.at
        s.nodes[0].groups.stop(now: s.now)        // power cut: nothing sent
        s.nodes[0].up = false
        s.run(for: 2)
        let takeover = s.nodes[1].g.transitions.last!
        #expect(takeover.to == .master)
        // 3 × 0.1 s + (256 − 100) × 0.1 s / 256 = 0.3609375 s after the last advert.
        #expect(takeover.at.nanoseconds - last.nanoseconds == Self.down(100))
        #expect(takeover.at.nanoseconds - last.nanoseconds == 360_937_500)
        #expect(takeover.reason.contains("master down timer expired (no advert for 0.361 s)"))
        #expect(s.adverts(from: 0).last!.at == last)
    }

    @Test func backupLearnsTheMastersIntervalAndTimesOutOnIt() {
        // The master advertises every 1 s; the backup is configured for 0.1 s.
        let s = Segment([Node(Self.config(200, interval: 100), n: 1), Node(Self.config(100, interval: 10), n: 2)])
        s.run(for: 10)
        #expect(s.nodes[1].g.masterAdverInterval == 100)
        #expect(s.nodes[1].g.masterDownInterval == Self.down(100, cs: 100))
        let last = s.adverts(from: 0).last!.at
        s.nodes[0].groups.stop(now: s.now)
        s.nodes[0].up = false
        s.run(for: 5)
        let takeover = s.nodes[1].g.transitions.last!
        #expect(takeover.to == .master)
        #expect(takeover.at.nanoseconds - last.nanoseconds == 3_000_000_000 + 609_375_000)
        // As master it advertises its own interval again.
        #expect(s.nodes[1].g.masterAdverInterval == 10)
        let mine = s.adverts(from: 1)
        #expect(mine.count >= 2 && mine[1].at.nanoseconds - mine[0].at.nanoseconds == 100_000_000)
    }

    @Test func resigningMasterHandsOverAfterSkewTime() {
        let s = Segment([Node(Self.config(200), n: 1), Node(Self.config(100), n: 2)])
        s.run(for: 2.05)
        let resignedAt = s.now
        s.resign(0)
        s.nodes[0].up = false
        #expect(s.adverts(from: 0).last!.priority == 0)
        #expect(s.nodes[0].g.state == .initialize)
        s.run(for: 1)
        let takeover = s.nodes[1].g.transitions.last!
        #expect(takeover.to == .master)
        #expect(takeover.at.nanoseconds - resignedAt.nanoseconds == Self.skew(100))
        #expect(takeover.reason.contains("resigned (priority 0)"))
    }

    @Test func preemptionOnTakesTheGroupBack() {
        let s = Segment([Node(Self.config(200), n: 1), Node(Self.config(100), n: 2)])
        s.nodes[0].up = false
        s.run(for: 3)
        #expect(s.nodes[1].g.state == .master)
        s.nodes[0].up = true
        let start = s.now
        s.run(for: 3)
        #expect(s.nodes[0].g.state == .master && s.nodes[1].g.state == .backup)
        // A ignored B's lower-priority adverts: master one Master_Down_Interval after it started.
        #expect(s.nodes[0].g.transitions.last!.at.nanoseconds - start.nanoseconds == Self.down(200))
        #expect(s.nodes[1].g.transitions.last!.reason.contains("higher priority 200 > 100"))
    }

    @Test func preemptionOffLeavesTheLowerMaster() {
        let s = Segment([Node(Self.config(200, preempt: false), n: 1), Node(Self.config(100), n: 2)])
        s.nodes[0].up = false
        s.run(for: 3)
        s.nodes[0].up = true
        s.run(for: 10)
        #expect(s.nodes[0].g.state == .backup && s.nodes[1].g.state == .master)
        #expect(s.nodes[0].g.masterAddress == Self.ip(2))
    }

    @Test func preemptDelayHoldsOffThenPreempts() {
        let s = Segment([Node(Self.config(200, delay: 2), n: 1), Node(Self.config(100), n: 2)])
        s.nodes[0].up = false
        s.run(for: 3)
        s.nodes[0].up = true
        let start = s.now
        s.run(for: 1.9)
        #expect(s.nodes[0].g.state == .backup && s.nodes[1].g.state == .master)
        s.run(for: 2)
        #expect(s.nodes[0].g.state == .master && s.nodes[1].g.state == .backup)
        let after = s.nodes[0].g.transitions.last!.at.nanoseconds - start.nanoseconds
        // Not before the delay; then within one advert interval + Master_Down_Interval.
        #expect(after > 2_000_000_000)
        #expect(after <= 2_000_000_000 + 100_000_000 + Self.down(200))
    }

    @Test func linkDownStopsTheGroupAndLinkUpStartsItAgain() {
        let s = Segment([Node(Self.config(200), n: 1), Node(Self.config(100), n: 2)])
        s.run(for: 1)
        s.nodes[0].groups.setLink(PortID(0), up: false, now: s.now, emit: &s.emitter)
        s.deliver(from: 0)
        #expect(s.nodes[0].g.state == .initialize && s.nodes[0].g.nextTimer == nil)
        #expect(s.nodes[0].g.transitions.last!.reason == "link down (no carrier)")
        let sent = s.adverts(from: 0).count
        s.run(for: 1)
        #expect(s.adverts(from: 0).count == sent)      // silent while down
        #expect(s.nodes[1].g.state == .master)
        s.nodes[0].groups.setLink(PortID(0), up: true, now: s.now, emit: &s.emitter)
        let upAt = s.now
        #expect(s.nodes[0].g.state == .backup)
        s.run(for: 1)
        // Startup as backup, then preempts the lower master after its Master_Down_Interval.
        #expect(s.nodes[0].g.state == .master && s.nodes[1].g.state == .backup)
        #expect(s.nodes[0].g.transitions.last!.at.nanoseconds - upAt.nanoseconds == Self.down(200))
        // Another port's link changes nothing.
        s.nodes[0].groups.setLink(PortID(1), up: false, now: s.now, emit: &s.emitter)
        #expect(s.nodes[0].g.state == .master)
    }

    @Test func addressOwnerIsMasterAtOnce() {
        let s = Segment([Node(Self.config(255, vips: [Self.ip(1)]), n: 1), Node(Self.config(100, vips: [Self.ip(1)]), n: 2)])
        s.run(for: 1)
        #expect(s.nodes[0].g.transitions.first!.to == .master)
        #expect(s.nodes[0].g.transitions.first!.at == .zero)
        #expect(s.nodes[1].g.state == .backup)
    }

    @Test func gratuitousARPsOnTakeoverSpacedFromTheGroupMAC() throws {
        for vmac in [false, true] {
            let s = Segment([Node(Self.config(200, vmac: vmac, vips: [Self.vip, Self.ip(101)]), n: 1)])
            s.run(for: 2)
            let garps = s.gratuitousARPs(from: 0)
            #expect(garps.count == 6)   // 3 rounds × 2 VIPs
            let mac = vmac ? VRRP.virtualMAC(7) : Self.mac(1)
            for (_, bytes) in garps {
                let arp = try bytes.withUnsafeBytes { try ARPRepr(parsing: ARPHeader(validating: UnsafeRawBufferPointer(rebasing: $0[14...]))) }
                #expect(arp.operation == .request && arp.senderProtocolAddress == arp.targetProtocolAddress)
                #expect(arp.senderHardwareAddress == mac)
                #expect(bytes[6..<12].elementsEqual((0..<6).map { mac[$0] }))
                #expect(bytes[0..<6].allSatisfy { $0 == 0xff })
            }
            let times = Set(garps.map(\.at))
            #expect(times.count == 3)
            let t = times.sorted()
            #expect(t[1].nanoseconds - t[0].nanoseconds == 100_000_000 && t[0] == s.nodes[0].g.transitions.last!.at)
            // Adverts come from the group's MAC too.
            let advert = s.frames.first { $0.bytes[23] == 112 }!.bytes
            #expect(advert[6..<12].elementsEqual((0..<6).map { mac[$0] }))
            #expect(advert[0..<6].elementsEqual([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]))
        }
    }

    /// An advert as node 9 would send it, then damaged.
    static func advert(priority: UInt8 = 250, damage: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        var e = Emitter()
        var g = VRRPInstance(config(priority), portMAC: mac(9), primaryAddress: ip(9))
        g.start(now: .zero, emit: &e)
        e.removeAll()
        g.tick(now: .seconds(1), emit: &e)      // master now: one advert first
        var bytes = Array(e.frame(at: 0).bytes)
        damage(&bytes)
        return bytes
    }

    static func refixIPChecksum(_ b: inout [UInt8]) {
        b[24] = 0; b[25] = 0
        let c = b.withUnsafeBytes { InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: $0[14..<34])) }
        b[24] = UInt8(c >> 8); b[25] = UInt8(c & 0xff)
    }

    @Test func malformedAdvertsAreCountedByReasonAndIgnored() {
        let cases: [(String, [UInt8])] = [
            ("vrrp-bad-ttl", Self.advert { $0[22] = 254; Self.refixIPChecksum(&$0) }),
            ("vrrp-bad-checksum", Self.advert { $0[40] ^= 0x55 }),
            ("vrrp-bad-version", Self.advert { $0[34] = 0x21 }),
            ("vrrp-bad-type", Self.advert { $0[34] = 0x32 }),
            ("vrrp-bad-length", Self.advert { $0[37] = 9 }),
            ("vrrp-truncated", Self.advert { $0.removeLast(8); $0[17] -= 8; Self.refixIPChecksum(&$0) }),
            ("vrrp-address-mismatch", Self.advert { $0[45] = 99; Self.refixAdvert(&$0) }),
            ("vrrp-unknown-group", Self.advert { $0[35] = 8; Self.refixAdvert(&$0) }),
        ]
        for (reason, frame) in cases {
            let s = Segment([Node(Self.config(100), n: 1)])
            s.run(for: 0.1)
            s.give(frame, to: 0)
            #expect(s.refused == [DropReason(reason)], "\(reason)")
            #expect(s.nodes[0].g.masterAddress == nil, "\(reason)")
        }
        // The undamaged advert is taken.
        let s = Segment([Node(Self.config(100), n: 1)])
        s.run(for: 0.1)
        s.give(Self.advert(), to: 0)
        #expect(s.refused.isEmpty && s.nodes[0].g.masterAddress == Self.ip(9))
    }

    static func refixAdvert(_ b: inout [UInt8]) {
        b[40] = 0; b[41] = 0
        let c = b.withUnsafeBytes { raw -> UInt16 in
            let pseudo = InternetChecksum.pseudoHeaderSum(source: VRRPTests.ip(9), destination: VRRP.multicastAddress,
                                                          protocol: VRRP.ipProtocol, length: raw.count - 34)
            return InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[34...]), initial: pseudo)
        }
        b[40] = UInt8(c >> 8); b[41] = UInt8(c & 0xff)
    }

    @Test func advertRoundTrips() throws {
        let frame = Self.advert(priority: 250)
        try frame.withUnsafeBytes { b in
            let ip = try IPv4Header(validating: UnsafeRawBufferPointer(rebasing: b[14...]))
            #expect(ip.timeToLive == 255 && ip.protocol.rawValue == 112 && ip.destinationAddress == VRRP.multicastAddress)
            #expect(ip.isChecksumValid)
            let h = try VRRPHeader(validating: ip.payload)
            #expect(h.isChecksumValid(source: Self.ip(9), destination: VRRP.multicastAddress))
            #expect(VRRPRepr(parsing: h) == VRRPRepr(virtualRouterID: 7, priority: 250, maxAdvertisementInterval: 10,
                                                    addresses: [Self.vip]))
        }
    }
}

/// The director and the router answer for a VRRP VIP only while master.
@Suite struct VRRPNodeTests {
    static let vip = VRRPTests.vip
    static let lvsMAC = MACAddress(0x02, 0, 0, 0, 0, 2)
    static let clientMAC = MACAddress(0x02, 0, 0, 0, 0, 0x50)
    static let client = IPv4Address(10, 0, 0, 50)

    static func director(vmac: Bool = false) throws -> Director {
        let service = Director.Service(VirtualService(address: vip, port: 80, proto: .tcp, scheduler: .rr, mode: .dr),
                                       reals: [RealServer(address: IPv4Address(10, 0, 0, 1))])
        var c = Director.Configuration(interfaces: [PortConfiguration(name: "eth0", mac: lvsMAC,
                                                                      addresses: [IPv4Prefix("10.0.0.2/24")!])],
                                       services: [service])
        c.vrrp = [VRRPTests.config(200, vmac: vmac)]
        return try Director(configuration: c)
    }

    static func router(vmac: Bool = false) throws -> Router {
        var c = Router.Configuration(interfaces: [PortConfiguration(name: "eth0", mac: lvsMAC, addresses: [IPv4Prefix("10.0.0.2/24")!]),
                                                  PortConfiguration(name: "eth1", mac: MACAddress(0x02, 0, 0, 0, 1, 2),
                                                                    addresses: [IPv4Prefix("10.1.0.2/24")!])])
        c.vrrp = [VRRPTests.config(200, vmac: vmac)]
        return try Router(configuration: c)
    }

    static func whoHas(_ target: IPv4Address) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 42)
        b.withUnsafeMutableBytes { s in
            EthernetRepr(destination: .broadcast, source: clientMAC, etherType: .arp).emit(into: EthernetMutableHeader(unchecked: s))
            ARPRepr(operation: .request, senderHardwareAddress: clientMAC, senderProtocolAddress: client,
                    targetHardwareAddress: .zero, targetProtocolAddress: target)
                .emit(into: ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: s[14...])))
        }
        return b
    }

    static func ping(_ dst: IPv4Address, to mac: MACAddress) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 14 + 20 + 8)
        b.withUnsafeMutableBytes { s in
            EthernetRepr(destination: mac, source: clientMAC, etherType: .ipv4).emit(into: EthernetMutableHeader(unchecked: s))
            IPv4Repr(sourceAddress: client, destinationAddress: dst, protocol: .icmp, payloadLength: 8)
                .emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: s[14...])))
            s[34] = 8
            let c = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: s[34...]))
            s[36] = UInt8(c >> 8); s[37] = UInt8(c & 0xff)
        }
        return b
    }

    /// ARP answers for the VIP: (verdict, MAC answered with).
    static func arpAnswer(_ driver: ElementDriver, at t: Double) -> MACAddress? {
        let out = driver.send(whoHas(vip), on: PortID(0), at: .seconds(t))
        let reply = out.verdict == .forward(PortID(0)) ? out.frame : out.emitted.first { $0.frame[21] == 2 }?.frame
        guard let reply else { return nil }
        return reply.withUnsafeBytes { $0.wireMAC(22) }
    }

    @Test(arguments: [false, true])
    func directorAnswersForTheVIPOnlyAsMaster(vmac: Bool) throws {
        let d = try Self.director(vmac: vmac)
        let driver = ElementDriver(d)
        _ = driver.fireTimers(at: .zero)             // starts: backup
        #expect(d.vrrp.instances[0].state == .backup)
        #expect(Self.arpAnswer(driver, at: 0.01) == nil)
        let toVIP = driver.send(Self.ping(Self.vip, to: Self.lvsMAC), on: PortID(0), at: .seconds(0.02))
        #expect(toVIP.verdict == .drop(VRRPGroups.backup))
        #expect(d.drops.counts[VRRPGroups.backup] == 1)
        // Its own address is answered all along.
        #expect(driver.send(Self.whoHas(IPv4Address(10, 0, 0, 2)), on: PortID(0), at: .seconds(0.03)).verdict == .forward(PortID(0)))
        // Nobody advertises: master after Master_Down_Interval, with an advert and gratuitous ARPs.
        #expect(d.nextTimer == Instant(nanoseconds: VRRPTests.down(200)))
        let sent = driver.fireTimers(at: d.nextTimer!)
        #expect(d.vrrp.isMaster(group: 7))
        #expect(sent.count == 2 && sent[0].frame[23] == 112 && sent[1].frame[12] == 0x08)
        let mac = vmac ? VRRP.virtualMAC(7) : Self.lvsMAC
        #expect(Self.arpAnswer(driver, at: 0.5) == mac)
        #expect(driver.send(Self.ping(Self.vip, to: mac), on: PortID(0), at: .seconds(0.6)).verdict == .forward(PortID(0)))
        // A frame to the virtual MAC is accepted only with vmac.
        if !vmac {
            #expect(driver.send(Self.ping(Self.vip, to: VRRP.virtualMAC(7)), on: PortID(0), at: .seconds(0.7)).verdict == .drop(.notForUs))
        }
        // A higher-priority peer takes over: silent again.
        let peer = VRRPTests.advert(priority: 250)
        #expect(driver.send(peer, on: PortID(0), at: .seconds(0.8)).verdict == .consumed)
        #expect(d.vrrp.instances[0].state == .backup)
        #expect(Self.arpAnswer(driver, at: 0.81) == nil)
        // Damaged adverts are counted by reason.
        var bad = peer
        bad[22] = 64
        VRRPTests.refixIPChecksum(&bad)
        #expect(driver.send(bad, on: PortID(0), at: .seconds(0.9)).verdict == .drop(DropReason("vrrp-bad-ttl")))
        #expect(d.drops.counts[DropReason("vrrp-bad-ttl")] == 1)
    }

    @Test(arguments: [false, true])
    func routerAnswersForTheVIPOnlyAsMaster(vmac: Bool) throws {
        let r = try Self.router(vmac: vmac)
        let driver = ElementDriver(r)
        _ = driver.fireTimers(at: .zero)
        #expect(Self.arpAnswer(driver, at: 0.01) == nil)
        #expect(driver.send(Self.ping(Self.vip, to: Self.lvsMAC), on: PortID(0), at: .seconds(0.02)).verdict == .drop(VRRPGroups.backup))
        _ = driver.fireTimers(at: r.nextTimer!)
        #expect(r.vrrp.isMaster(group: 7))
        let mac = vmac ? VRRP.virtualMAC(7) : Self.lvsMAC
        #expect(Self.arpAnswer(driver, at: 0.5) == mac)
        #expect(driver.send(Self.ping(Self.vip, to: mac), on: PortID(0), at: .seconds(0.6)).verdict == .forward(PortID(0)))
        #expect(driver.send(VRRPTests.advert(priority: 250), on: PortID(0), at: .seconds(0.8)).verdict == .consumed)
        #expect(r.vrrp.instances[0].state == .backup)
        #expect(Self.arpAnswer(driver, at: 0.81) == nil)
    }

    @Test func noVRRPNoTimer() throws {
        var c = Router.Configuration(interfaces: [PortConfiguration(mac: Self.lvsMAC, addresses: [IPv4Prefix("10.0.0.2/24")!])])
        c.vrrp = []
        #expect(try Router(configuration: c).nextTimer == nil)
    }
}

/// The steady state: a master's adverts every 0.1 s received by a backup,
/// through a director's packet path, on one reused buffer and emitter.
/// Nothing changes state, nothing is dropped. This is also the loop to run
/// under heaptrack to check that VRRP does not allocate in steady state:
///
///     heaptrack .build/debug/wirelabPackageTests.xctest --testing-library swift-testing \
///         --filter VRRPSteadyStateTests
///
/// (then `heaptrack_print` shows no allocation under `VRRPGroups`,
/// `VRRPInstance` or `Director.process`).
@Suite struct VRRPSteadyStateTests {
    @Test func advertsBetweenMasterAndBackupDirector() throws {
        var master = VRRPGroups([VRRPInstance(VRRPTests.config(200), portMAC: VRRPTests.mac(1), primaryAddress: VRRPTests.ip(1))])
        let backup = try VRRPNodeTests.director()       // priority 200 too: a backup takes adverts of equal priority (§6.4.2)
        var emitter = Emitter()
        var sink = Emitter()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        defer { buffer.deallocate() }
        var now = Instant.zero
        backup.fireTimers(now: now, emit: &sink)          // backup, waiting
        master.start(now: now, emit: &emitter)
        var delivered = 0
        for _ in 0..<5_000 {
            now = master.nextTimer!
            master.tick(now: now, emit: &emitter)
            for k in 0..<emitter.count {
                let frame = emitter.frame(at: k).bytes
                guard frame[23] == 112 else { continue }     // adverts; the gratuitous ARPs go nowhere
                buffer.copyMemory(from: frame.baseAddress!, byteCount: frame.count)
                var packet = PacketBuffer(base: buffer, capacity: 4096, offset: 0, length: frame.count)
                if backup.process(&packet, from: PortID(0), now: now, emit: &sink) == .consumed { delivered += 1 }
            }
            emitter.removeAll()
            if let t = backup.nextTimer, t <= now { backup.fireTimers(now: now, emit: &sink) }
            sink.removeAll()
        }
        #expect(delivered >= 5_000)
        #expect(backup.vrrp.instances[0].state == .backup)
        #expect(backup.vrrp.instances[0].transitionCount == 1)
        #expect(backup.drops.total == 0)
    }
}

/// Damaged adverts, at random (seeded): a director and a router running
/// VRRP take each one without trapping, and every frame they do not
/// consume is dropped under a reason they count.
@Suite struct VRRPMutationTests {
    typealias Rng = SeededRandom

    @Test(arguments: [false, true])
    func randomDamageIsCountedNeverFatal(router: Bool) throws {
        let element: any Element & VRRPNode = router ? try VRRPNodeTests.router() : try VRRPNodeTests.director()
        var emitter = Emitter()
        element.fireTimers(now: .zero, emit: &emitter)
        emitter.removeAll()
        var rng = Rng(seed: router ? 7 : 11)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        defer { buffer.deallocate() }
        var dropped = 0, consumed = 0
        var reasons: [DropReason: Int] = [:]
        for i in 0..<20_000 {
            var frame = VRRPTests.advert(priority: UInt8.random(in: 0...255, using: &rng))
            // 1–4 random bytes changed (the headers and the message), sometimes a cut, sometimes fixed checksums.
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                frame[Int.random(in: 14..<frame.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { VRRPTests.refixIPChecksum(&frame) }
            if Int.random(in: 0..<4, using: &rng) == 0 { VRRPTests.refixAdvert(&frame) }
            if Int.random(in: 0..<8, using: &rng) == 0 { frame.removeLast(Int.random(in: 1...(frame.count - 14), using: &rng)) }
            frame.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var packet = PacketBuffer(base: buffer, capacity: 4096, offset: 0, length: frame.count)
            switch element.process(&packet, from: PortID(0), now: .seconds(Double(i) * 0.001), emit: &emitter) {
            case .drop(let r): dropped += 1; reasons[r, default: 0] += 1
            case .consumed: consumed += 1
            case let other: Issue.record("a damaged advert was \(other)")
            }
            emitter.removeAll()
        }
        #expect(dropped + consumed == 20_000)
        #expect(Int(element.drops.total) == dropped)
        for (r, n) in reasons { #expect(element.drops.counts[r] == UInt64(n), "\(r)") }
        // The checks of §7.1 each caught some.
        for r in ["vrrp-bad-ttl", "vrrp-bad-checksum", "vrrp-bad-version"] { #expect(reasons[DropReason(r)] ?? 0 > 0, "\(r): \(reasons)") }
    }
}
