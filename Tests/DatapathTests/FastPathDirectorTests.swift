import Testing
import Wire
@testable import Datapath

/// A director between a gateway (port 0) and three reals (port 1) with a
/// TCP and a UDP service in each of NAT, DR and FULLNAT (and TUN for the
/// frames that must stay uncacheable), for the fast-path tests.
///
///   gw 10.0.1.254 ── p0 10.0.1.2 [lvs] p1 10.0.0.2 ── rs1 10.0.0.1, rs2 .3, rs3 .4
///   VIPs 10.0.9.100 (NAT), .101 (DR), .102 (FULLNAT, locals 10.0.0.200/.201), .103 (TUN)
enum FPD {
    typealias Flow = FastPathHarness.Flow
    static let p0MAC = MACAddress(0x02, 0, 0, 0, 0, 0x10), p1MAC = MACAddress(0x02, 0, 0, 0, 0, 0x11)
    static let gw = IPv4Address(10, 0, 1, 254), gwMAC = MACAddress(0x02, 0, 0, 0, 0, 0xfe)
    static let reals: [(IPv4Address, MACAddress)] = [
        (IPv4Address(10, 0, 0, 1), MACAddress(0x02, 0, 0, 0, 0, 0x01)),
        (IPv4Address(10, 0, 0, 3), MACAddress(0x02, 0, 0, 0, 0, 0x03)),
        (IPv4Address(10, 0, 0, 4), MACAddress(0x02, 0, 0, 0, 0, 0x04)),
    ]
    static let locals = [IPv4Address(10, 0, 0, 200), IPv4Address(10, 0, 0, 201)]

    struct Service {
        var vip: IPv4Address
        var port: UInt16
        var tcp: Bool
        var mode: ForwardingMode
        var sendsReplies: Bool { mode == .nat || mode == .fullnat }
    }

    static let services: [Service] = [
        Service(vip: IPv4Address(10, 0, 9, 100), port: 80, tcp: true, mode: .nat),
        Service(vip: IPv4Address(10, 0, 9, 100), port: 53, tcp: false, mode: .nat),
        Service(vip: IPv4Address(10, 0, 9, 101), port: 80, tcp: true, mode: .dr),
        Service(vip: IPv4Address(10, 0, 9, 101), port: 53, tcp: false, mode: .dr),
        Service(vip: IPv4Address(10, 0, 9, 102), port: 443, tcp: true, mode: .fullnat),
        Service(vip: IPv4Address(10, 0, 9, 102), port: 53, tcp: false, mode: .fullnat),
        Service(vip: IPv4Address(10, 0, 9, 103), port: 80, tcp: true, mode: .tun),
    ]

    static func configuration() -> Director.Configuration {
        var c = Director.Configuration(
            interfaces: [
                Director.Interface(name: "eth0", mac: p0MAC, addresses: [IPv4Prefix(address: IPv4Address(10, 0, 1, 2), length: 24)]),
                Director.Interface(name: "eth1", mac: p1MAC, addresses: [IPv4Prefix(address: IPv4Address(10, 0, 0, 2), length: 24)]),
            ],
            routes: [.defaultRoute(via: gw)],
            services: services.enumerated().map { n, s in
                // NAT and FULLNAT map the port; the schedulers differ by service.
                let port: UInt16? = s.sendsReplies ? s.port &+ 8000 : nil
                let schedulers: [SchedulerKind] = [.rr, .wrr, .mh, .wlc, .sh, .rr, .rr]
                return Director.Service(
                    VirtualService(address: s.vip, port: s.port, proto: s.tcp ? .tcp : .udp, scheduler: schedulers[n],
                                   mode: s.mode, localAddresses: s.mode == .fullnat ? locals : []),
                    reals: reals.enumerated().map { k, real in RealServer(address: real.0, port: port, weight: k + 1) })
            })
        c.core.maxConnections = 4096
        return c
    }

    /// The director, its gateway and reals resolved (they asked for it).
    static func driver(configure: (inout Director.Configuration) -> Void = { _ in }) -> (ElementDriver, Director) {
        var c = configuration()
        configure(&c)
        let director = try! Director(configuration: c)
        let driver = ElementDriver(director)
        resolve(driver, at: .zero)
        return (driver, director)
    }

    /// The gateway and the reals ask for the director's addresses, so it learns them.
    static func resolve(_ driver: ElementDriver, at t: Instant) {
        let asks = [(gwMAC, gw, IPv4Address(10, 0, 1, 2), 0)] + reals.map { ($0.1, $0.0, IPv4Address(10, 0, 0, 2), 1) }
        for (mac, ip, target, port) in asks {
            let out = driver.send(DE.arp(.request, from: mac, ip, asking: target), on: PortID(port), at: t)
            precondition(out.verdict == .forward(PortID(port)))
        }
    }

    /// A client's flow to service S, as the gateway delivers it.
    static func flow(_ s: Service, client: IPv4Address, port: UInt16, udpChecksum: Bool = true) -> Flow {
        Flow(port: 0, sourceMAC: gwMAC, destinationMAC: p0MAC, source: client, destination: s.vip, tcp: s.tcp,
             sourcePort: port, destinationPort: s.port, udpChecksum: udpChecksum)
    }

    /// Opens FLOW's connection as its ends would (TCP: SYN, the real's
    /// SYN-ACK where the director sees replies, the handshake's ACK; UDP:
    /// one datagram, answered), checking that none of those frames may be
    /// repeated. Returns the flow of the real's answers (nil: DR, TUN).
    static func open(_ flow: Flow, _ s: Service, _ driver: ElementDriver, _ r: inout SeededRandom, at t: inout Double,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Flow? {
        let director = driver.element as! Director
        func send(_ f: Flow, flags: TCPFlags?, _ what: String) -> ElementDriver.Outcome {
            let out = driver.send(FastPathHarness.frame(f, &r, ttl: 64, flags: flags, payload: 10), on: PortID(f.port),
                                  at: .seconds(t))
            t += 0.001
            #expect(out.verdict == .forward(PortID(1 - f.port)), "\(what) of \(f): \(out.verdict)",
                    sourceLocation: sourceLocation)
            #expect(!director.takeFastPathCacheable(), "\(what) of \(f) may not be repeated", sourceLocation: sourceLocation)
            return out
        }
        let first = send(flow, flags: s.tcp ? .syn : nil, s.tcp ? "the SYN" : "the first datagram")
        var back: Flow? = nil
        if s.sendsReplies {
            back = Flow.answering(first.frame, on: 1, udpChecksum: flow.udpChecksum)
            if s.tcp { _ = send(back!, flags: [.syn, .ack], "the SYN-ACK") }
        }
        if s.tcp { _ = send(flow, flags: .ack, "the handshake's ACK") }
        return back
    }
}

/// The director's and the switch's fast-path hooks without the program:
/// which frames may be repeated, what moves the generation, and what
/// `fastPathFlowSeen` refreshes.
struct FastPathDirectorTests {
    typealias H = FastPathHarness

    @Test func establishedConnectionsMayBeRepeatedInEveryModeTUNOnlyWithDF() {
        let (driver, director) = FPD.driver()
        var r = SeededRandom(seed: 1)
        var t = 1.0
        for (n, s) in FPD.services.enumerated() {
            let flow = FPD.flow(s, client: IPv4Address(123, 123, 0, UInt8(n + 1)), port: 40000)
            let back = FPD.open(flow, s, driver, &r, at: &t)
            for f in [flow] + (back.map { [$0] } ?? []) {
                let frame = H.frame(f, &r, ttl: 64)
                let out = driver.send(frame, on: PortID(f.port), at: .seconds(t))
                #expect(out.verdict == .forward(PortID(1 - f.port)))
                // TUN: only a datagram with DF (its outer header's ID is then 0) and no padding.
                let tunRepeatable = frame[14 + 6] & 0x40 != 0
                    && frame.count == 14 + Int(UInt16(frame[16]) << 8 | UInt16(frame[17]))
                #expect(director.takeFastPathCacheable() == (s.mode != .tun || tunRepeatable), "\(s.mode) \(f)")
                #expect(!director.takeFastPathCacheable(), "reading clears it")
            }
            guard s.tcp else { continue }
            // A FIN moves the state; the ACKs after it move it further.
            _ = driver.send(H.frame(flow, &r, ttl: 64, flags: [.fin, .ack]), on: PortID(0), at: .seconds(t))
            #expect(!director.takeFastPathCacheable(), "\(s.mode): a FIN")
            _ = driver.send(H.frame(flow, &r, ttl: 64, flags: .ack), on: PortID(0), at: .seconds(t))
            #expect(!director.takeFastPathCacheable(), "\(s.mode): an ACK after the FIN")
        }
        // Not a connection's: a frame the director routes, an echo request to a VIP.
        let routed = Frames.udp(Frames.IP(source: FPD.reals[0].0, destination: IPv4Address(198, 51, 100, 1)),
                                dst: FPD.p1MAC, src: FPD.reals[0].1)
        #expect(driver.send(routed, on: PortID(1), at: .seconds(t)).verdict == .forward(PortID(0)))
        #expect(!director.takeFastPathCacheable(), "routed")
        let ping = Frames.echo(Frames.IP(source: IPv4Address(123, 123, 0, 1), destination: FPD.services[0].vip),
                               dst: FPD.p0MAC, src: FPD.gwMAC)
        _ = driver.send(ping, on: PortID(0), at: .seconds(t))
        #expect(!director.takeFastPathCacheable(), "ICMP")
    }

    @Test func theGenerationFollowsServicesRealsNeighboursAndRemovedConnections() throws {
        let (driver, director) = FPD.driver()
        var r = SeededRandom(seed: 2)
        var t = 1.0
        let nat = FPD.services[0]
        let flow = FPD.flow(nat, client: IPv4Address(123, 123, 0, 1), port: 40000)
        _ = FPD.open(flow, nat, driver, &r, at: &t)
        let g0 = director.fastPathGeneration
        _ = driver.send(H.frame(flow, &r, ttl: 64), on: PortID(0), at: .seconds(t))
        #expect(director.fastPathGeneration == g0, "forwarding changes nothing")

        let real = try #require(director.realServer(FPD.reals[0].0, port: 8080, service: nat.vip, servicePort: 80))
        try director.setWeight(0, for: real)
        let g1 = director.fastPathGeneration
        #expect(g1 != g0, "a real quiesced")
        try director.setEnabled(false, for: real)
        let g2 = director.fastPathGeneration
        #expect(g2 != g1, "a real disabled")
        try director.setEnabled(false, for: real)
        #expect(director.fastPathGeneration == g2, "nothing changed")
        try director.addService(Director.Service(VirtualService(address: IPv4Address(10, 0, 9, 110), port: 80, mode: .nat),
                                                 reals: [RealServer(address: FPD.reals[1].0)]))
        let g3 = director.fastPathGeneration
        #expect(g3 != g2, "a service added")
        let moved = DE.arp(.request, from: MACAddress(0x02, 0, 0, 0, 0, 0x99), FPD.reals[2].0, asking: IPv4Address(10, 0, 0, 2))
        _ = driver.send(moved, on: PortID(1), at: .seconds(t))
        let g4 = director.fastPathGeneration
        #expect(g4 != g3, "a real's new MAC")

        // Removed connections retire entries only once one may exist (the
        // core's part: the neighbours expire too by then).
        director.fastPathCacheable = false   // forget the frame above without taking it (taking arms)
        let c0 = director.core.fastPathGeneration
        _ = driver.tick(at: .seconds(2000))
        #expect(director.connections(now: .seconds(2000)).isEmpty)
        #expect(director.core.fastPathGeneration == c0, "no entry was taken: nothing to retire")
        FPD.resolve(driver, at: .seconds(2000))
        let again = FPD.flow(nat, client: IPv4Address(123, 123, 0, 2), port: 40001)
        t = 2001
        _ = FPD.open(again, nat, driver, &r, at: &t)
        _ = driver.send(H.frame(again, &r, ttl: 64), on: PortID(0), at: .seconds(t))
        #expect(director.takeFastPathCacheable())
        _ = driver.tick(at: .seconds(4000))
        let c1 = director.core.fastPathGeneration
        #expect(c1 != c0, "a connection that may have an entry expired")
        _ = driver.tick(at: .seconds(5000))
        #expect(director.core.fastPathGeneration == c1, "once")
    }

    /// A SYN reusing a TIME_WAIT connection's ports makes a new connection
    /// (maybe to another real) under the old one's 5-tuple: its entries go.
    @Test func aReusedConnectionRetiresEntries() throws {
        let (driver, director) = FPD.driver()
        var r = SeededRandom(seed: 3)
        var t = 1.0
        let nat = FPD.services[0]
        let flow = FPD.flow(nat, client: IPv4Address(123, 123, 0, 1), port: 40000)
        let back = try #require(FPD.open(flow, nat, driver, &r, at: &t))
        _ = driver.send(H.frame(flow, &r, ttl: 64), on: PortID(0), at: .seconds(t))
        #expect(director.takeFastPathCacheable())
        _ = driver.send(H.frame(flow, &r, ttl: 64, flags: [.fin, .ack]), on: PortID(0), at: .seconds(t))
        _ = driver.send(H.frame(back, &r, ttl: 64, flags: [.fin, .ack]), on: PortID(1), at: .seconds(t))
        #expect(director.connections(now: .seconds(t)).first?.state == .timeWait)
        let g = director.fastPathGeneration
        _ = driver.send(H.frame(flow, &r, ttl: 64, flags: .syn), on: PortID(0), at: .seconds(t + 1))
        #expect(director.core.counters.reused == 1)
        #expect(director.fastPathGeneration != g)
    }

    /// The entry of each direction finds its connection; a refresh extends
    /// the connection's life from the last frame (never back); an entry
    /// whose connection is gone, closing or another's is reported.
    @Test func flowSeenRefreshesTheConnectionAndReportsItGone() throws {
        let (driver, director) = FPD.driver()
        var r = SeededRandom(seed: 4)
        var t = 1.0
        var kept: [FastPathEntry] = []
        for s in FPD.services {
            let flow = FPD.flow(s, client: IPv4Address(123, 123, 1, 1), port: 41000)
            let back = FPD.open(flow, s, driver, &r, at: &t)
            var entries: [FastPathEntry] = []
            defer { kept += entries }
            for f in [flow] + (back.map { [$0] } ?? []) {
                let before = H.frame(f, &r, ttl: 64, dontFragment: true)   // TUN repeats only DF datagrams
                let out = driver.send(before, on: PortID(f.port), at: .seconds(t))
                #expect(director.takeFastPathCacheable())
                entries.append(try FastPathEntry.derive(before: before, after: out.frame, ingressSlot: UInt16(f.port),
                                                        egressSlot: UInt16(1 - f.port), maxLength: 1500,
                                                        generation: director.fastPathGeneration))
            }
            func expiry() -> UInt64 {
                director.connections(now: .zero).first {
                    $0.clientPort == 41000 && $0.virtual == s.vip && $0.virtualPort == s.port
                }!.expiresInNanoseconds
            }
            let timeout = UInt64(ConnectionTimeouts().seconds(s.tcp ? .established : .udp) * 1e9)
            for (k, entry) in entries.enumerated() {
                let seen = t + 10 + Double(k)
                #expect(director.fastPathFlowSeen(entry, lastSeen: .seconds(seen), now: .seconds(seen + 0.5)), "\(s.mode) \(entry.key)")
                #expect(expiry() == Instant.seconds(seen).nanoseconds + timeout, "\(s.mode): refreshed from the last frame")
                #expect(director.fastPathFlowSeen(entry, lastSeen: .seconds(t), now: .seconds(seen + 1)))
                #expect(expiry() == Instant.seconds(seen).nanoseconds + timeout, "\(s.mode): never earlier")
                var other = entry
                other.destination = IPv4Address(10, 0, 0, 99)
                #expect(!director.fastPathFlowSeen(other, lastSeen: .seconds(seen), now: .seconds(seen + 1)),
                        "\(s.mode): an entry that writes what the connection does not")
            }
            if s.tcp {
                _ = driver.send(H.frame(flow, &r, ttl: 64, flags: [.fin, .ack]), on: PortID(0), at: .seconds(t))
                #expect(!director.fastPathFlowSeen(entries[0], lastSeen: .seconds(t), now: .seconds(t)), "\(s.mode): closing")
            }
        }
        _ = driver.tick(at: .seconds(10_000))
        #expect(director.connections(now: .seconds(10_000)).isEmpty)
        for entry in kept {
            #expect(!director.fastPathFlowSeen(entry, lastSeen: .seconds(10_000), now: .seconds(10_000)), "gone: \(entry.key)")
        }
    }

    /// With sync on, a refresh counts as a use: a connection last sent more
    /// than half its lifetime ago is queued for the peers again.
    @Test func flowSeenOffersTheConnectionToSync() throws {
        let (driver, director) = FPD.driver { $0.sync = SyncConfiguration(syncID: 1, port: PortID(1)) }
        var r = SeededRandom(seed: 5)
        var t = 1.0
        let s = FPD.services[3]   // UDP, DR: 300 s
        let flow = FPD.flow(s, client: IPv4Address(123, 123, 2, 1), port: 42000)
        _ = FPD.open(flow, s, driver, &r, at: &t)
        let before = H.frame(flow, &r, ttl: 64)
        let out = driver.send(before, on: PortID(0), at: .seconds(t))
        #expect(director.takeFastPathCacheable())
        let entry = try FastPathEntry.derive(before: before, after: out.frame, ingressSlot: 0, egressSlot: 1,
                                             maxLength: 1500, generation: director.fastPathGeneration)
        _ = driver.tick(at: .seconds(t + 1))   // the creation's message leaves
        let sent = director.syncCounters.entriesSent
        #expect(director.fastPathFlowSeen(entry, lastSeen: .seconds(t + 100), now: .seconds(t + 101)))
        #expect(director.syncCounters.entriesSent == sent, "used again within half its lifetime")
        #expect(director.fastPathFlowSeen(entry, lastSeen: .seconds(t + 200), now: .seconds(t + 201)))
        #expect(director.syncCounters.entriesSent == sent + 1, "more than half its lifetime after it was sent")
    }

    @Test func theSwitchRefreshesTheSourceMACWhereItWasLearned() throws {
        let sw = LearningSwitch(ports: 3, configuration: .init(agingTime: 10))
        let driver = ElementDriver(sw)
        let a = MACAddress(0x02, 0, 0, 0, 0, 0x0a), b = MACAddress(0x02, 0, 0, 0, 0, 0x0b)
        _ = driver.send(LearningSwitchTests.frame(to: .broadcast, from: b), on: PortID(1), at: .seconds(1))
        var r = SeededRandom(seed: 6)
        let flow = H.Flow(port: 0, sourceMAC: a, destinationMAC: b, source: IPv4Address(10, 0, 0, 1),
                          destination: IPv4Address(10, 0, 0, 2), tcp: true, sourcePort: 1000, destinationPort: 80,
                          udpChecksum: true)
        let before = H.frame(flow, &r)
        let out = driver.send(before, on: PortID(0), at: .seconds(2))
        #expect(out.verdict == .forward(PortID(1)) && sw.takeFastPathCacheable())
        let entry = try FastPathEntry.derive(before: before, after: out.frame, ingressSlot: 0, egressSlot: 1,
                                             maxLength: 1500, generation: sw.fastPathGeneration)
        let g = sw.fastPathGeneration
        #expect(sw.fastPathFlowSeen(entry, lastSeen: .seconds(9), now: .seconds(9.5)))
        #expect(sw.table[a]?.lastSeen == .seconds(9))
        #expect(sw.fastPathFlowSeen(entry, lastSeen: .seconds(3), now: .seconds(9.6)))
        #expect(sw.table[a]?.lastSeen == .seconds(9), "never earlier")
        #expect(sw.fastPathGeneration == g, "a refresh moves nothing")
        _ = driver.tick(at: .seconds(15))
        #expect(sw.table[a] != nil, "refreshed: still known at 15 s")
        #expect(sw.table[b] == nil, "b aged out (its frames were not refreshed)")
        // Moved to another port: the entry's port no longer holds it.
        _ = driver.send(LearningSwitchTests.frame(to: .broadcast, from: a), on: PortID(2), at: .seconds(16))
        #expect(!sw.fastPathFlowSeen(entry, lastSeen: .seconds(16), now: .seconds(16)))
        _ = driver.tick(at: .seconds(40))
        #expect(!sw.fastPathFlowSeen(entry, lastSeen: .seconds(40), now: .seconds(40)), "aged out")
    }
}
