import Testing
import Wire
@testable import Datapath

// Active/active directors (issue 14): two directors configured alike (same
// service, `mh` over the same reals, mh-port), each with its own address.
// A connection is set up through A; an ECMP change then sends its next
// packets to B, which has no entry for it. With `sloppy` B schedules the
// mid-connection packet and Maglev picks the real A picked; without it B
// refuses it as IPVS does (`lvs-not-syn`).

@Suite struct DirectorActiveActiveTests {
    static let lvs2MAC = MACAddress(0x02, 0, 0, 0, 0, 0x04)
    static let lvs2 = IPv4Address(10, 0, 0, 4)

    /// Director A (DE's lvs) or B (lvs2), same service.
    static func director(_ mode: ForwardingMode, b: Bool, sloppy: Bool, flags: SchedulerFlags = [.port],
                         proto: TransportProtocol = .tcp) -> Director {
        var c = DE.configuration(mode, scheduler: .mh, proto: proto)
        c.services[0].service.schedulerFlags = flags
        c.services[0].service.sloppy = sloppy
        if b {
            c.interfaces = [Director.Interface(name: "eth0", mac: lvs2MAC, addresses: [IPv4Prefix(address: lvs2, length: 24)])]
        }
        return try! Director(configuration: c)
    }

    /// The gateway and both reals resolve the director's address, so it learns them.
    static func learn(_ driver: ElementDriver, mac: MACAddress, ip: IPv4Address) {
        for (m, a) in [(DE.gwMAC, DE.gw), (DE.rs1MAC, DE.rs1), (DE.rs2MAC, DE.rs2)] {
            let out = driver.send(DE.arp(.request, from: m, a, asking: ip), on: PortID(0), at: .seconds(0))
            precondition(out.verdict == .forward(PortID(0)))
        }
    }

    /// The client → VIP segment as the gateway delivers it to `mac`.
    static func segment(_ flags: UInt8, sport: UInt16, to mac: MACAddress, seq: UInt32 = 1001, payload: [UInt8] = []) -> [UInt8] {
        DE.fromClient(flags, sport: sport, seq: seq, ack: 1, payload: payload).with { $0.dstMAC = mac }.frame
    }

    /// The real a forwarded frame is for, by its destination MAC's last byte (rs1 0x01, rs2 0x03).
    static func real(_ out: ElementDriver.Outcome) -> UInt8? {
        if case .forward = out.verdict { return out.frame[5] }
        return nil
    }

    @Test(arguments: [ForwardingMode.dr, .tun, .nat], [true, false])
    func aFlowMovedToTheOtherDirectorContinuesOnItsRealOnlyWhenSloppy(_ mode: ForwardingMode, _ sloppy: Bool) throws {
        let a = ElementDriver(Self.director(mode, b: false, sloppy: sloppy))
        let bDirector = Self.director(mode, b: true, sloppy: sloppy)
        let b = ElementDriver(bDirector)
        Self.learn(a, mac: DE.lvsMAC, ip: DE.lvs)
        Self.learn(b, mac: Self.lvs2MAC, ip: Self.lvs2)
        var reals: [UInt8: Int] = [:]
        for port in UInt16(40000)..<40032 {
            // Handshake and first data through A.
            let syn = a.send(DE.fromClient(DE.syn, sport: port).frame, on: PortID(0), at: .seconds(1))
            let first = try #require(Self.real(syn), "A forwards the SYN")
            #expect(Self.real(a.send(Self.segment(DE.ack, sport: port, to: DE.lvsMAC), on: PortID(0), at: .seconds(1))) == first)
            reals[first, default: 0] += 1
            // The ECMP change: the next segment reaches B.
            let moved = b.send(Self.segment(DE.psh | DE.ack, sport: port, to: Self.lvs2MAC, payload: [1, 2, 3]),
                               on: PortID(0), at: .seconds(2))
            if sloppy {
                #expect(Self.real(moved) == first, "port \(port): B continues the flow on A's real")
                #expect(DE.checksumProblem(moved.frame) == nil)
                // And keeps doing so: the entry exists now.
                let next = b.send(Self.segment(DE.ack, sport: port, to: Self.lvs2MAC, seq: 1004), on: PortID(0), at: .seconds(2))
                #expect(Self.real(next) == first)
            } else {
                #expect(moved.verdict == .drop(Refusal.notSyn.dropReason), "port \(port): \(moved.verdict)")
            }
        }
        // mh-port: one client's connections spread over both reals.
        #expect(reals.count == 2, "\(reals)")
        let snapshot = bDirector.snapshot()
        if sloppy {
            // IPVS sloppy: an entry made from an ACK starts ESTABLISHED (tcp_states: sNO + ACK → sES).
            let connections = bDirector.connections(now: .seconds(2))
            #expect(connections.count == 32)
            #expect(connections.allSatisfy { $0.state == .established })
            #expect(snapshot.counters.refusedNotSyn == 0)
            #expect(snapshot.ipvsadmListing().contains("mh (mh-port) sloppy"))
        } else {
            #expect(snapshot.entries == 0 && snapshot.counters.refusedNotSyn == 32)
            #expect(snapshot.ipvsadmListing().contains("mh (mh-port)\n"))
        }
    }

    /// A RST creates nothing, sloppy or not (tcp_conn_schedule: th->rst).
    @Test func aResetWithoutEntryIsNeverScheduled() {
        let bDirector = Self.director(.dr, b: true, sloppy: true)
        let b = ElementDriver(bDirector)
        Self.learn(b, mac: Self.lvs2MAC, ip: Self.lvs2)
        let out = b.send(Self.segment(DE.rst | DE.ack, sport: 40000, to: Self.lvs2MAC), on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .drop(Refusal.notSyn.dropReason))
        #expect(bDirector.snapshot().entries == 0)
    }

    /// Without mh-port every connection of one client goes to one real, on
    /// both directors alike.
    @Test func withoutMhPortOneClientStaysOnOneReal() throws {
        let a = ElementDriver(Self.director(.dr, b: false, sloppy: true, flags: []))
        let b = ElementDriver(Self.director(.dr, b: true, sloppy: true, flags: []))
        Self.learn(a, mac: DE.lvsMAC, ip: DE.lvs)
        Self.learn(b, mac: Self.lvs2MAC, ip: Self.lvs2)
        var seen = Set<UInt8>()
        for port in UInt16(40000)..<40032 {
            let ra = try #require(Self.real(a.send(DE.fromClient(DE.syn, sport: port).frame, on: PortID(0), at: .seconds(1))))
            let rb = Self.real(b.send(Self.segment(DE.ack, sport: port, to: Self.lvs2MAC), on: PortID(0), at: .seconds(1)))
            #expect(rb == ra)
            seen.insert(ra)
        }
        #expect(seen.count == 1)
    }

    /// UDP has no SYN: IPVS schedules any UDP datagram that has no entry
    /// (udp_conn_schedule), and so does the director, sloppy or not — a UDP
    /// flow moved to B continues on A's real either way.
    @Test(arguments: [false, true])
    func udpIsScheduledOnAnyDatagram(_ sloppy: Bool) throws {
        let a = ElementDriver(Self.director(.dr, b: false, sloppy: sloppy, proto: .udp))
        let b = ElementDriver(Self.director(.dr, b: true, sloppy: sloppy, proto: .udp))
        Self.learn(a, mac: DE.lvsMAC, ip: DE.lvs)
        Self.learn(b, mac: Self.lvs2MAC, ip: Self.lvs2)
        func datagram(_ port: UInt16, to mac: MACAddress) -> [UInt8] {
            DE.Packet(srcMAC: DE.gwMAC, dstMAC: mac, src: DE.client, dst: DE.vip,
                      transport: .udp(sport: port, dport: 80), payload: [7]).frame
        }
        var reals = Set<UInt8>()
        for port in UInt16(5000)..<5016 {
            let ra = try #require(Self.real(a.send(datagram(port, to: DE.lvsMAC), on: PortID(0), at: .seconds(1))))
            #expect(Self.real(b.send(datagram(port, to: Self.lvs2MAC), on: PortID(0), at: .seconds(2))) == ra)
            reals.insert(ra)
        }
        #expect(reals.count == 2)
    }
}
