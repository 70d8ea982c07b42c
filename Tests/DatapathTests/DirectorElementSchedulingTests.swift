import Testing
import Wire
@testable import Datapath

// Scheduling as seen on the wire: which real's MAC each new flow leaves
// for, under weights, health changes, a full table and exhausted FULLNAT
// ports; and the control API the lab daemon uses.

@Suite struct DirectorElementSchedulingTests {
    /// Sends one SYN per client port and counts the reals by destination MAC.
    static func spread(_ driver: ElementDriver, ports: Range<UInt16>, at t: Double = 1,
                       client: (UInt16) -> IPv4Address = { _ in DE.client }) -> [MACAddress: Int] {
        var seen: [MACAddress: Int] = [:]
        for port in ports {
            let out = driver.send(DE.fromClient(DE.syn, sport: port, client: client(port)).frame, on: PortID(0), at: .seconds(t))
            if case .forward = out.verdict { seen[MACAddress(rawValue: out.frame[0..<6].reduce(0) { $0 << 8 | UInt64($1) }), default: 0] += 1 }
        }
        return seen
    }

    @Test func weightedRoundRobinOneToTwo() {
        let driver = ElementDriver(DE.director(.dr, scheduler: .wrr,
                                               reals: [RealServer(address: DE.rs1, weight: 1), RealServer(address: DE.rs2, weight: 2)]))
        DE.learnNeighbours(driver)
        #expect(Self.spread(driver, ports: 1000..<1300) == [DE.rs1MAC: 100, DE.rs2MAC: 200])
    }

    /// Maglev over many clients: the 1:2 weights within 5 %.
    @Test func maglevOneToTwoWithinTolerance() {
        let driver = ElementDriver(DE.director(.dr, scheduler: .mh,
                                               reals: [RealServer(address: DE.rs1, weight: 1), RealServer(address: DE.rs2, weight: 2)]) {
            $0.core.maxConnections = 4096
        })
        DE.learnNeighbours(driver)
        let seen = Self.spread(driver, ports: 1000..<4000) { IPv4Address(rawValue: 0x0B00_0000 | ((UInt32($0) &* 2_654_435_761) & 0x00FF_FFFF)) }
        #expect(seen.values.reduce(0, +) == 3000)
        #expect(abs(seen[DE.rs1MAC, default: 0] - 1000) <= 50, "\(seen)")
        #expect(abs(seen[DE.rs2MAC, default: 0] - 2000) <= 100, "\(seen)")
    }

    /// Health check fails on rs1: new flows all go to rs2; rs1's existing
    /// flow keeps going to rs1. Weight 0 (quiesce) acts the same.
    @Test(arguments: [false, true])
    func disabledOrQuiescedRealTakesNoNewFlows(_ quiesce: Bool) throws {
        let director = DE.director(.dr)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        #expect(driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(1)).frame[5] == 0x01)  // rs1
        _ = driver.send(DE.fromClient(DE.ack, seq: 1001, ack: 1).frame, on: PortID(0), at: .seconds(1))
        let rs1 = try #require(director.realServer(DE.rs1, service: DE.vip, servicePort: 80))
        if quiesce { try director.setWeight(0, for: rs1) } else { try director.setEnabled(false, for: rs1) }
        #expect(Self.spread(driver, ports: 2000..<2010, at: 2) == [DE.rs2MAC: 10])
        let data = driver.send(DE.fromClient(DE.psh | DE.ack, seq: 1001, ack: 1, payload: [1]).frame, on: PortID(0), at: .seconds(3))
        #expect(data.verdict == .forward(PortID(0)) && data.frame[5] == 0x01, "the existing flow stays on rs1")
        let real = director.snapshot().services[0].reals[0]
        #expect(real.enabled == quiesce && real.weight == (quiesce ? 0 : 1) && real.activeConnections == 1)
        if quiesce { try director.setWeight(1, for: rs1) } else { try director.setEnabled(true, for: rs1) }
        #expect(Self.spread(driver, ports: 3000..<3010, at: 4)[DE.rs1MAC] != nil)
    }

    /// The table full: new flows are refused (counted), the ones in it go on.
    @Test func fullTableRefusesNewFlowsKeepsExisting() {
        let director = DE.director(.dr) { $0.core.maxConnections = 3; $0.core.dropEmbryonic = false }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        #expect(Self.spread(driver, ports: 1..<4).values.reduce(0, +) == 3)
        let refused = driver.send(DE.fromClient(DE.syn, sport: 4).frame, on: PortID(0), at: .seconds(1))
        #expect(refused.verdict == .drop(.tableFull) && refused.emitted.isEmpty)
        for port: UInt16 in 1..<4 {
            #expect(driver.send(DE.fromClient(DE.ack, sport: port).frame, on: PortID(0), at: .seconds(2)).verdict == .forward(PortID(0)))
        }
        #expect(director.drops.counts[.tableFull] == 1)
        #expect(director.snapshot().counters.refusedTableFull == 1)
        // Room again once a connection times out (SYN_RECV: 60 s).
        _ = driver.tick(at: .seconds(62))
        #expect(director.snapshot().entries == 3)  // the ACKed ones are ESTABLISHED
        let director2 = DE.director(.dr) { $0.core.maxConnections = 1; $0.core.dropEmbryonic = false }
        let driver2 = ElementDriver(director2)
        DE.learnNeighbours(driver2)
        _ = driver2.send(DE.fromClient(DE.syn, sport: 1).frame, on: PortID(0), at: .seconds(1))
        #expect(driver2.send(DE.fromClient(DE.syn, sport: 2).frame, on: PortID(0), at: .seconds(2)).verdict == .drop(.tableFull))
        _ = driver2.tick(at: .seconds(61))
        DE.learnNeighbours(driver2, at: 61)  // the neighbour entries lapsed meanwhile
        #expect(driver2.send(DE.fromClient(DE.syn, sport: 2).frame, on: PortID(0), at: .seconds(61)).verdict == .forward(PortID(0)))
    }

    /// Two FULLNAT source ports: the third flow is refused; the first two
    /// carry on; when one ends its port serves a new flow.
    @Test func fullnatPortExhaustion() {
        let director = DE.director(.fullnat, reals: [RealServer(address: DE.rs1)]) { $0.core.localPortRange = 2000...2001 }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        func sourcePort(_ out: ElementDriver.Outcome) -> UInt16 { UInt16(out.frame[34]) << 8 | UInt16(out.frame[35]) }
        let a = driver.send(DE.fromClient(DE.syn, sport: 1).frame, on: PortID(0), at: .seconds(1))
        let b = driver.send(DE.fromClient(DE.syn, sport: 2).frame, on: PortID(0), at: .seconds(1))
        #expect(sourcePort(a) == 2000 && sourcePort(b) == 2001)
        let c = driver.send(DE.fromClient(DE.syn, sport: 3).frame, on: PortID(0), at: .seconds(1))
        #expect(c.verdict == .drop(Refusal.localPortsExhausted.dropReason))
        #expect(director.drops.counts[DropReason("lvs-local-ports-exhausted")] == 1)
        let ackA = driver.send(DE.fromClient(DE.ack, sport: 1).frame, on: PortID(0), at: .seconds(2))
        #expect(ackA.verdict == .forward(PortID(0)) && sourcePort(ackA) == 2000)
        // Flow 2 is reset once established; CLOSE lasts 10 s, then its port is free again.
        _ = driver.send(DE.fromClient(DE.ack, sport: 2).frame, on: PortID(0), at: .seconds(2))
        _ = driver.send(DE.fromClient(DE.rst, sport: 2).frame, on: PortID(0), at: .seconds(3))
        _ = driver.tick(at: .seconds(13))
        let d = driver.send(DE.fromClient(DE.syn, sport: 3).frame, on: PortID(0), at: .seconds(13))
        #expect(d.verdict == .forward(PortID(0)) && sourcePort(d) == 2001)
        #expect(director.snapshot().localPorts == [DirectorSnapshot.LocalPorts(address: DE.local, inUse: 2, capacity: 2)])
    }

    /// TCP without SYN and no connection is not scheduled (IPVS); a SYN on
    /// a connection in TIME_WAIT starts a new one (conn_reuse_mode 1).
    @Test func notSynAndReuse() {
        let director = DE.director(.nat)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        DE.run([DE.Row(description: "stray ACK", input: DE.fromClient(DE.ack).frame, verdict: .drop(Refusal.notSyn.dropReason))],
               driver)
        for (t, f) in [(1.0, DE.syn), (1.1, DE.ack), (1.2, DE.fin | DE.ack)] {
            _ = driver.send(DE.fromClient(f).frame, on: PortID(0), at: .seconds(t))
        }
        _ = driver.send(DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 80, DE.client, 40000, DE.fin | DE.ack, ttl: 64).frame,
                        on: PortID(0), at: .seconds(1.3))
        #expect(director.connections(now: .seconds(1.3)).first?.state == .timeWait)
        let again = driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(2))
        #expect(again.verdict == .forward(PortID(0)))
        #expect(director.connections(now: .seconds(2)).first?.state == .synRecv)
        #expect(director.snapshot().counters.reused == 1)
    }

    /// Persistence through the element: one client's flows all go to one real.
    @Test func persistencePinsAClient() {
        var c = DE.configuration(.dr, persistence: Persistence(timeout: 300))
        c.core.maxConnections = 64
        let director = try! Director(configuration: c)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        #expect(Self.spread(driver, ports: 1..<10).count == 1)
        #expect(director.snapshot().services[0].reals.map(\.persistentConnections).reduce(0, +) == 1)
    }

    // MARK: Control API

    @Test func controlAPIAndListing() throws {
        let director = DE.director(.nat, scheduler: .wlc, reals: [RealServer(address: DE.rs1, port: 8080)])
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        _ = driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(1))
        #expect(director.realServer(DE.rs1, service: DE.vip, servicePort: 80) == nil, "the real listens on 8080")
        let id = try #require(director.realServer(DE.rs1, port: 8080, service: DE.vip, servicePort: 80))
        try director.setWeight(5, for: id)
        #expect(throws: DirectorConfigurationError.weightOutOfRange(70000)) { try director.setWeight(70000, for: id) }
        let listing = director.snapshot().ipvsadmListing()
        #expect(listing.contains("TCP  10.0.0.100:80 wlc"))
        #expect(listing.contains("  -> 10.0.0.1:8080                Masq    5      0          1"))
        #expect(director.serviceIDs == [ServiceID(rawValue: 0)])

        // A service added at run time is answered for at once.
        try director.addService(Director.Service(VirtualService(address: IPv4Address(10, 0, 0, 101), port: 53, proto: .udp,
                                                                scheduler: .rr, mode: .dr),
                                                 reals: [RealServer(address: DE.rs2)]))
        let arp = driver.send(DE.arp(.request, from: DE.gwMAC, DE.gw, asking: IPv4Address(10, 0, 0, 101)), on: PortID(0), at: .seconds(2))
        #expect(arp.frame == DE.arpReply(IPv4Address(10, 0, 0, 101), to: DE.gwMAC, DE.gw))
        #expect(director.serviceIDs.count == 2)
    }

    /// What the daemon may get wrong is refused with a reason, and nothing is built.
    @Test func configurationErrors() {
        func error(_ change: (inout Director.Configuration) -> Void) -> Director.ConfigurationError? {
            var c = DE.configuration(.dr)
            change(&c)
            do { _ = try Director(configuration: c); return nil } catch { return error }
        }
        #expect(error { $0.interfaces = [] } == .noInterfaces)
        #expect(error { $0.interfaces[0].addresses = [] } == .interfaceWithoutAddress(PortID(0)))
        #expect(error { $0.interfaces[0].mtu = 9000 } == .mtuOutOfRange(PortID(0), 9000))
        #expect(error { $0.routes = [.defaultRoute(via: IPv4Address(192, 168, 1, 1))] } == .gatewayNotOnLink(IPv4Address(192, 168, 1, 1)))
        #expect(error { $0.routes = [Director.Route(IPv4Prefix("0.0.0.0/0")!, via: DE.gw, port: PortID(3))] } == .portOutOfRange(PortID(3)))
        #expect(error { $0.services[0].reals.append(RealServer(address: IPv4Address(172, 16, 0, 1))) }
                == .directRoutingRealNotOnLink(real: IPv4Address(172, 16, 0, 1), service: DE.vip))
        #expect(error { $0.services[0].reals[0].port = 8080 } == .portMappingNeedsNAT(real: DE.rs1, port: 8080, service: DE.vip))
        #expect(error { $0.services[0].service.address = IPv4Address(224, 0, 0, 1) } == .unusableAddress(IPv4Address(224, 0, 0, 1)))
        #expect(error { $0.services.append($0.services[0]) } == .service(.duplicateService(.tcp, DE.vip, 80)))
        #expect(error { $0.services[0].service.mode = .fullnat } == .service(.fullnatWithoutLocalAddresses))
        // TUN reals may be anywhere routable.
        #expect(error { $0.services[0].service.mode = .tun; $0.services[0].reals = [RealServer(address: IPv4Address(172, 16, 0, 1))] } == nil)
    }

    /// TUN to a real behind the gateway: the outer header goes to the
    /// gateway's MAC, addressed to the real.
    @Test func tunnelToARemoteReal() {
        let remote = IPv4Address(172, 16, 0, 1)
        let driver = ElementDriver(DE.director(.tun, reals: [RealServer(address: remote)]))
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn)
        DE.run([DE.Row(description: "SYN → IPIP to 172.16.0.1 via the gateway", input: syn.frame, verdict: .forward(PortID(0)),
                       output: DE.tunnelled(syn, to: remote, realMAC: DE.gwMAC).frame)], driver)
    }
}
