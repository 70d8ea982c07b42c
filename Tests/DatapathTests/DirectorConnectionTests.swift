import Testing
import Wire
@testable import Datapath

// DirectorCore as the packet-rewriting Director sees it: packets in (as
// protocol, addresses, ports, TCP flags and a time), decisions out.

let dVIP = IPv4Address(10, 0, 0, 100)
let dReal1 = IPv4Address(10, 0, 0, 1)
let dReal2 = IPv4Address(10, 0, 0, 2)
let dClient = IPv4Address(123, 123, 123, 123)
let SYN = TCPFlagBits.syn, ACK = TCPFlagBits.ack, FIN = TCPFlagBits.fin, RST = TCPFlagBits.rst, PSH = TCPFlagBits.psh

func directorCore(_ mode: ForwardingMode = .nat, scheduler: SchedulerKind = .rr, proto: TransportProtocol = .tcp,
                  reals: [RealServer] = [RealServer(address: dReal1), RealServer(address: dReal2)],
                  persistence: Persistence? = nil, localAddresses: [IPv4Address] = [],
                  configure: (inout DirectorCore.Configuration) -> Void = { _ in }) -> DirectorCore {
    var configuration = DirectorCore.Configuration(maxConnections: 1024)
    configure(&configuration)
    let core = DirectorCore(configuration: configuration)
    try! core.addService(VirtualService(address: dVIP, port: 80, proto: proto, scheduler: scheduler, mode: mode,
                                        persistence: persistence, localAddresses: localAddresses), reals: reals)
    return core
}

extension DirectorCore {
    func inbound(_ flags: UInt8, port: UInt16 = 40000, from client: IPv4Address = dClient, at t: Double,
                 proto: TransportProtocol = .tcp, vip: IPv4Address = dVIP, vport: UInt16 = 80) -> Decision {
        schedule(proto, client: client, clientPort: port, virtual: vip, virtualPort: vport, tcpFlags: flags, now: .seconds(t))
    }

    func counts(_ real: Int, service: Int = 0) -> (active: Int, inactive: Int, persistent: Int) {
        let r = snapshot().services[service].reals[real]
        return (r.activeConnections, r.inactiveConnections, r.persistentConnections)
    }
}

@Suite struct DirectorTCPStateTests {
    enum Side { case client, real }

    /// One packet, the state it must leave the connection in, and the
    /// timeout (seconds from the packet) that state carries.
    struct Step {
        var side: Side
        var flags: UInt8
        var at: Double
        var state: ConnectionState
        var timeout: Double
    }

    struct Row: CustomStringConvertible {
        var description: String
        var mode: ForwardingMode
        var proto: TransportProtocol = .tcp
        var steps: [Step]
    }

    static func c(_ f: UInt8, _ t: Double, _ s: ConnectionState, _ timeout: Double) -> Step { Step(side: .client, flags: f, at: t, state: s, timeout: timeout) }
    static func r(_ f: UInt8, _ t: Double, _ s: ConnectionState, _ timeout: Double) -> Step { Step(side: .real, flags: f, at: t, state: s, timeout: timeout) }

    static let rows: [Row] = [
        Row(description: "NAT: handshake, client closes", mode: .nat, steps: [
            c(SYN, 0, .synRecv, 60),
            r(SYN | ACK, 0.01, .synRecv, 60),
            c(ACK, 0.02, .established, 900),
            c(PSH | ACK, 0.5, .established, 900),
            r(PSH | ACK, 0.6, .established, 900),
            c(FIN | ACK, 1, .closeWait, 60),
            r(FIN | ACK, 1.01, .timeWait, 120),
            c(ACK, 1.02, .timeWait, 120),
        ]),
        Row(description: "NAT: server closes first", mode: .nat, steps: [
            c(SYN, 0, .synRecv, 60),
            r(SYN | ACK, 0, .synRecv, 60),
            c(ACK, 0, .established, 900),
            r(FIN | ACK, 5, .finWait, 120),
            c(FIN | ACK, 5.1, .timeWait, 120),
        ]),
        Row(description: "NAT: server resets the handshake", mode: .nat, steps: [
            c(SYN, 0, .synRecv, 60),
            r(RST | ACK, 0.01, .close, 10),
        ]),
        Row(description: "NAT: client resets an established connection", mode: .nat, steps: [
            c(SYN, 0, .synRecv, 60),
            r(SYN | ACK, 0, .synRecv, 60),
            c(ACK, 0, .established, 900),
            c(RST, 3, .close, 10),
        ]),
        Row(description: "FULLNAT behaves as NAT", mode: .fullnat, steps: [
            c(SYN, 0, .synRecv, 60),
            r(SYN | ACK, 0, .synRecv, 60),
            c(ACK, 0, .established, 900),
            r(FIN | ACK, 2, .finWait, 120),
        ]),
        Row(description: "DR (input only): SYN, ACK, FIN, ACK, RST", mode: .dr, steps: [
            c(SYN, 0, .synRecv, 60),
            c(ACK, 0.1, .established, 900),
            c(FIN | ACK, 10, .finWait, 120),
            c(ACK, 10.1, .finWait, 120),
            c(RST, 11, .close, 10),
        ]),
        Row(description: "DR: an RST in SYN_RECV leaves it in SYN_RECV (IPVS's table), one after ESTABLISHED closes", mode: .dr, steps: [
            c(SYN, 0, .synRecv, 60),
            c(RST, 1, .synRecv, 60),
            c(ACK, 2, .established, 900),
            c(RST, 3, .close, 10),
            c(ACK, 4, .close, 10),
        ]),
        Row(description: "TUN (input only): retransmitted SYN stays SYN_RECV", mode: .tun, steps: [
            c(SYN, 0, .synRecv, 60),
            c(SYN, 1, .synRecv, 60),
            c(ACK, 2, .established, 900),
            c(SYN, 3, .established, 900),
        ]),
        Row(description: "DR: a segment without SYN/FIN/ACK/RST closes (set_tcp_state)", mode: .dr, steps: [
            c(SYN, 0, .synRecv, 60),
            c(ACK, 0, .established, 900),
            c(PSH, 1, .close, 10),
        ]),
        Row(description: "UDP: one state, 300 s, both ways", mode: .nat, proto: .udp, steps: [
            c(0, 0, .udp, 300),
            r(0, 1, .udp, 300),
            c(0, 100, .udp, 300),
        ]),
    ]

    @Test(arguments: rows)
    func transitions(_ row: Row) {
        let core = directorCore(row.mode, proto: row.proto, localAddresses: row.mode == .fullnat ? [IPv4Address(192, 168, 0, 1)] : [])
        var handle = ConnectionHandle.none
        var toAddress = dClient, toPort: UInt16 = 40000
        for (n, step) in row.steps.enumerated() {
            let what = "\(row.description), step \(n)"
            switch step.side {
            case .client:
                let d = core.inbound(step.flags, at: step.at, proto: row.proto)
                #expect(d.outcome == (n == 0 ? .created : .existing), "\(what)")
                #expect(d.state == step.state, "\(what)")
                handle = d.connection
                if let l = d.localAddress, let lp = d.localPort { (toAddress, toPort) = (l, lp) }
            case .real:
                let e = core.connection(handle)!
                let d = core.lookupReply(row.proto, from: IPv4Address(rawValue: e.realAddress), fromPort: e.realPort,
                                         to: toAddress, toPort: toPort, tcpFlags: step.flags, now: .seconds(step.at))
                #expect(d.found && d.connection == handle, "\(what)")
                #expect(d.state == step.state, "\(what)")
                #expect(d.virtualAddress == dVIP && d.virtualPort == 80 && d.clientAddress == dClient && d.clientPort == 40000, "\(what)")
            }
            let e = core.connection(handle)!
            #expect(e.state == step.state.rawValue, "\(what)")
            #expect(e.expires == Instant.seconds(step.at).adding(seconds: step.timeout).nanoseconds, "\(what): timeout")
            let real = Int(e.real)
            let counts = core.counts(real)
            let established = step.state == .established
            #expect(counts.active == (established ? 1 : 0) && counts.inactive == (established ? 0 : 1), "\(what): counts \(counts)")
        }
    }

    /// The transcribed table itself, spot-checked against ip_vs_proto_tcp.c's
    /// rows (since Linux 3.12, where an ACK in NONE goes to ESTABLISHED).
    @Test func tableCellsMatchIPVS() {
        typealias S = ConnectionState
        let cases: [(S, UInt8, PacketDirection, S)] = [
            (.none, SYN, .input, .synRecv), (.none, ACK, .input, .established), (.none, ACK, .inputOnly, .established),
            (.none, FIN, .output, .timeWait),
            (.established, FIN, .input, .closeWait), (.established, FIN, .output, .finWait), (.established, FIN, .inputOnly, .finWait),
            (.synRecv, RST, .input, .synRecv), (.synRecv, RST, .output, .close), (.synAck, RST, .input, .synRecv),
            (.synAck, RST, .inputOnly, .close), (.timeWait, RST, .output, .timeWait), (.lastAck, ACK, .input, .close),
            (.lastAck, ACK, .output, .lastAck), (.listen, ACK, .output, .established), (.synSent, SYN | ACK, .input, .established),
            (.closeWait, FIN, .output, .timeWait), (.established, SYN | RST, .input, .close), (.established, 0, .input, .close),
        ]
        for (from, flags, dir, to) in cases {
            #expect(TCPStateMachine.next(from, flags: flags, direction: dir) == to, "\(from) \(flags) \(dir)")
        }
        #expect(TCPStateMachine.next(.udp, flags: SYN, direction: .input) == .udp)
    }

    @Test func timeoutsAreConfigurable() {
        let core = directorCore(.dr) { $0.timeouts.established = 30; $0.timeouts.synRecv = 5 }
        let d = core.inbound(SYN, at: 0)
        #expect(core.connection(d.connection)!.expires == Instant.seconds(5).nanoseconds)
        _ = core.inbound(ACK, at: 1)
        #expect(core.connection(d.connection)!.expires == Instant.seconds(31).nanoseconds)
    }
}

@Suite struct DirectorExpiryTests {
    @Test func connectionsExpireByTheInjectedClock() {
        let core = directorCore(.dr)
        _ = core.inbound(SYN, port: 1, at: 0)                 // SYN_RECV, 60 s
        _ = core.inbound(SYN, port: 2, at: 0)
        _ = core.inbound(ACK, port: 2, at: 1)                 // ESTABLISHED, until 901
        #expect(core.counts(0) == (0, 1, 0) && core.counts(1) == (1, 0, 0))
        #expect(core.expire(now: .seconds(59.999)) == 0)
        #expect(core.expire(now: .seconds(60)) == 1)          // expires ≤ now goes
        #expect(core.counts(0) == (0, 0, 0))
        #expect(core.table.count == 1)
        #expect(core.expire(now: .seconds(900.9)) == 0)
        #expect(core.expire(now: .seconds(901)) == 1)
        #expect(core.table.count == 0 && core.counts(1) == (0, 0, 0))
        #expect(core.counters.expired == 2)
    }

    @Test func lookupsExpireLazily() {
        let core = directorCore(.dr)
        _ = core.inbound(SYN, at: 0)
        #expect(core.inbound(ACK, at: 59).outcome == .existing)   // refreshed: ESTABLISHED until 959
        #expect(core.inbound(ACK, at: 958).outcome == .existing)
        // Never expired by a timer, but the lookup sees its time is up.
        #expect(core.inbound(ACK, at: 958 + 900).outcome == .refused(.notSyn))
        #expect(core.table.count == 0 && core.counts(0) == (0, 0, 0))
        #expect(core.counters.expired == 1)
    }

    @Test func aShorterTimeoutIsHonouredExactly() {
        let core = directorCore(.dr)
        _ = core.inbound(SYN, at: 0)
        _ = core.inbound(ACK, at: 1)            // ESTABLISHED: wheel slot near t = 901
        _ = core.inbound(RST, at: 2)            // CLOSE: 10 s → 12
        #expect(core.expire(now: .seconds(11.99)) == 0)
        #expect(core.expire(now: .seconds(12)) == 1)
    }

    @Test func expireCallsAtAnyCadenceRemoveExactlyTheDueEntries() {
        // Many connections with many expiries; expire called at random
        // moments (sometimes jumping past the wheel's span) must leave
        // exactly the entries that are not yet due.
        let core = directorCore(.dr) { $0.maxConnections = 5000 }
        var rng = SeededRandom(seed: 42)
        var model: [UInt16: Double] = [:]      // client port → expiry
        let timeouts = ConnectionTimeouts()
        var now = 0.0
        var port: UInt16 = 1
        for _ in 0..<3000 {
            now += Double.random(in: 0...3, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                _ = core.inbound(SYN, port: port, at: now)
                model[port] = now + 60
                port += 1
            case 5..<7:
                if let p = model.keys.randomElement(using: &rng) {
                    let d = core.inbound(ACK, port: p, at: now)
                    if model[p]! > now {
                        #expect(d.outcome == .existing)
                        model[p] = now + timeouts.seconds(d.state)
                    } else {
                        model[p] = nil
                    }
                }
            case 7:
                // RST closes ESTABLISHED (10 s) but leaves SYN_RECV as it is.
                if let p = model.keys.randomElement(using: &rng), model[p]! > now {
                    let d = core.inbound(RST, port: p, at: now)
                    model[p] = now + timeouts.seconds(d.state)
                }
            case 8:
                now += Double.random(in: 0...(rng.next() % 50 == 0 ? 3000 : 30), using: &rng)
            default:
                core.expire(now: .seconds(now))
                model = model.filter { $0.value > now }
                #expect(core.table.count == model.count)
            }
        }
        core.expire(now: .seconds(now))
        model = model.filter { $0.value > now }
        #expect(core.table.count == model.count)
        let live = Set(core.connections(now: .seconds(now)).map(\.clientPort))
        #expect(live == Set(model.keys))
        let c = core.counts(0), d = core.counts(1)
        #expect(c.active + c.inactive + d.active + d.inactive == model.count)
    }
}

@Suite struct DirectorScheduleTests {
    @Test func existingConnectionsKeepTheirRealNewOnesAreScheduled() {
        let core = directorCore(.nat)
        let a = core.inbound(SYN, port: 1, at: 0)
        let b = core.inbound(SYN, port: 2, at: 0)
        let a2 = core.inbound(ACK, port: 1, at: 1)
        #expect(a.outcome == .created && b.outcome == .created && a2.outcome == .existing)
        #expect(a.realAddress == dReal1 && b.realAddress == dReal2 && a2.realAddress == dReal1)
        #expect(a.realPort == 80 && a.mode == .nat && a.localAddress == nil && a.localPort == nil)
        #expect(a2.connection == a.connection)
        #expect(core.counters.created == 2 && core.counters.existing == 1)
    }

    @Test func refusals() {
        let core = directorCore(.dr, reals: [RealServer(address: dReal1)])
        #expect(core.inbound(ACK, at: 0).outcome == .refused(.notSyn))
        #expect(core.inbound(SYN | RST, at: 0).outcome == .refused(.notSyn))
        #expect(core.inbound(SYN, at: 0, vport: 81).outcome == .refused(.noService))
        #expect(core.inbound(0, at: 0, proto: .udp).outcome == .refused(.noService))
        #expect(core.inbound(SYN, at: 0, vip: dReal2).outcome == .refused(.noService))
        #expect(core.counters.refusedNotSyn == 2 && core.counters.refusedNoService == 3)
        #expect(Refusal.tableFull.dropReason == .tableFull)
        let sloppy = directorCore(.dr) { $0.sloppyTCP = true }
        #expect(sloppy.inbound(ACK, at: 0).outcome == .created)
    }

    @Test func weightZeroAndDisabledRealsTakeNoNewConnectionsButKeepTheirOwn() throws {
        let core = directorCore(.dr)
        let real1 = core.real(ServiceID(rawValue: 0), address: dReal1, port: 80)!
        let real2 = core.real(ServiceID(rawValue: 0), address: dReal2, port: 80)!
        let a = core.inbound(SYN, port: 1, at: 0)
        #expect(a.real == real1)
        try core.setWeight(0, for: real1)
        for p in UInt16(2)...5 { #expect(core.inbound(SYN, port: p, at: 1).real == real2) }
        #expect(core.inbound(ACK, port: 1, at: 2).real == real1)          // existing continues
        try core.setWeight(1, for: real1)
        try core.setEnabled(false, for: real2)
        for p in UInt16(6)...9 { #expect(core.inbound(SYN, port: p, at: 3).real == real1) }
        #expect(core.inbound(ACK, port: 2, at: 4).real == real2)          // existing continues
        try core.setEnabled(false, for: real1)
        #expect(core.inbound(SYN, port: 10, at: 5).outcome == .refused(.noRealAvailable))
        #expect(core.counters.refusedNoReal == 1)
        #expect(throws: DirectorConfigurationError.weightOutOfRange(70000)) { try core.setWeight(70000, for: real1) }
        #expect(throws: DirectorConfigurationError.unknownReal(RealServerID(service: ServiceID(rawValue: 0), index: 5))) {
            try core.setEnabled(true, for: RealServerID(service: ServiceID(rawValue: 0), index: 5))
        }
    }

    @Test func aSynOnATimeWaitConnectionStartsANewOne() {
        let core = directorCore(.nat)
        let first = core.inbound(SYN, port: 7, at: 0)
        _ = core.lookupReply(.tcp, from: first.realAddress, fromPort: 80, to: dClient, toPort: 7, tcpFlags: SYN | ACK, now: .seconds(0))
        _ = core.inbound(ACK, port: 7, at: 0)
        _ = core.inbound(FIN | ACK, port: 7, at: 1)
        let tw = core.lookupReply(.tcp, from: first.realAddress, fromPort: 80, to: dClient, toPort: 7, tcpFlags: FIN | ACK, now: .seconds(1))
        #expect(tw.state == .timeWait)
        let again = core.inbound(SYN, port: 7, at: 2)
        #expect(again.outcome == .created && again.state == .synRecv)
        #expect(again.realAddress == dReal2)       // rescheduled: rr moved on
        #expect(core.counters.reused == 1 && core.table.count == 1)
        #expect(core.counts(0) == (0, 0, 0) && core.counts(1) == (0, 1, 0))
    }

    @Test func natRepliesAreFoundOnlyForTheirConnection() {
        let core = directorCore(.nat)
        let d = core.inbound(SYN, port: 5555, at: 0)
        let hit = core.lookupReply(.tcp, from: d.realAddress, fromPort: 80, to: dClient, toPort: 5555, tcpFlags: SYN | ACK, now: .seconds(0))
        #expect(hit.found && hit.mode == .nat && hit.real == d.real && hit.virtualAddress == dVIP)
        #expect(!core.lookupReply(.tcp, from: d.realAddress, fromPort: 80, to: dClient, toPort: 5556, tcpFlags: ACK, now: .seconds(0)).found)
        #expect(!core.lookupReply(.tcp, from: d.realAddress, fromPort: 81, to: dClient, toPort: 5555, tcpFlags: ACK, now: .seconds(0)).found)
        #expect(!core.lookupReply(.udp, from: d.realAddress, fromPort: 80, to: dClient, toPort: 5555, tcpFlags: 0, now: .seconds(0)).found)
        #expect(!core.lookupReply(.tcp, from: d.realAddress, fromPort: 80, to: dClient, toPort: 5555, tcpFlags: ACK, now: .seconds(61)).found)
        #expect(core.counters.replies == 1 && core.counters.replyMisses == 4 && core.table.count == 0)
        // DR connections have no reply key.
        let dr = directorCore(.dr)
        let e = dr.inbound(SYN, port: 1, at: 0)
        #expect(!dr.lookupReply(.tcp, from: e.realAddress, fromPort: 80, to: dClient, toPort: 1, tcpFlags: ACK, now: .seconds(0)).found)
    }

    @Test func natReplyKeysThatWouldCollideAreRefused() throws {
        let core = directorCore(.nat, reals: [RealServer(address: dReal1)])
        let vip2 = IPv4Address(10, 0, 0, 101)
        try core.addService(VirtualService(address: vip2, port: 80, scheduler: .rr, mode: .nat), reals: [RealServer(address: dReal1)])
        #expect(core.inbound(SYN, port: 9, at: 0).outcome == .created)
        #expect(core.inbound(SYN, port: 9, at: 0, vip: vip2).outcome == .refused(.replyCollision))
        #expect(core.inbound(SYN, port: 10, at: 0, vip: vip2).outcome == .created)
        #expect(core.counters.refusedReplyCollision == 1)
    }

    @Test func aFullTableRefusesNewConnectionsAndKeepsTheOldOnes() {
        // IPVS drop_entry off: full means refused, whatever the states.
        let core = directorCore(.dr) { $0.maxConnections = 4; $0.dropEmbryonic = false }
        for p in UInt16(1)...4 { #expect(core.inbound(SYN, port: p, at: 0).outcome == .created) }
        #expect(core.inbound(SYN, port: 5, at: 0).outcome == .refused(.tableFull))
        #expect(core.inbound(SYN, port: 6, at: 1).outcome == .refused(.tableFull))
        #expect(core.counters.refusedTableFull == 2)
        for p in UInt16(1)...4 { #expect(core.inbound(ACK, port: p, at: 1).outcome == .existing) }
        _ = core.inbound(RST, port: 2, at: 2)           // CLOSE, 10 s
        core.expire(now: .seconds(12))
        #expect(core.inbound(SYN, port: 5, at: 12).outcome == .created)
        #expect(core.table.count == 4)
    }

    @Test func snapshotListsLikeIpvsadm() throws {
        let core = directorCore(.dr, reals: [RealServer(address: dReal1), RealServer(address: dReal2, weight: 2)])
        try core.addService(VirtualService(address: dVIP, port: 443, scheduler: .mh, schedulerFlags: [.fallback, .port], mode: .nat,
                                           persistence: Persistence(timeout: 360, netmaskLength: 24), maglevTableSize: 251),
                            reals: [RealServer(address: dReal1, port: 8443)])
        _ = core.inbound(SYN, port: 1, at: 0)
        _ = core.inbound(ACK, port: 1, at: 0)
        _ = core.inbound(SYN, port: 2, at: 0)
        try core.setEnabled(false, for: RealServerID(service: ServiceID(rawValue: 1), index: 0))
        let text = core.snapshot().ipvsadmListing()
        #expect(text == """
            IP Virtual Server version 1.2.1 (size=1024)
            Prot LocalAddress:Port Scheduler Flags
              -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
            TCP  10.0.0.100:80 rr
              -> 10.0.0.1:80                  Route   1      1          0
              -> 10.0.0.2:80                  Route   2      0          1
            TCP  10.0.0.100:443 mh (mh-fallback,mh-port) persistent 360 mask 255.255.255.0
              -> 10.0.0.1:8443                Masq    1      0          0  (failed)

            """)
        let list = DirectorSnapshot.connectionListing(core.connections(now: .seconds(0)).sorted { $0.clientPort < $1.clientPort })
        #expect(list == """
            IPVS connection entries
            pro expire state       source                virtual               destination
            TCP 15:00  ESTABLISHED 123.123.123.123:1     10.0.0.100:80         10.0.0.1:80
            TCP 01:00  SYN_RECV    123.123.123.123:2     10.0.0.100:80         10.0.0.2:80

            """)
    }

    @Test func configurationErrors() throws {
        let core = DirectorCore(configuration: .init(maxConnections: 16))
        let s = VirtualService(address: dVIP, port: 80)
        try core.addService(s)
        #expect(throws: DirectorConfigurationError.duplicateService(.tcp, dVIP, 80)) { try core.addService(s) }
        #expect(throws: DirectorConfigurationError.fullnatWithoutLocalAddresses) {
            try core.addService(VirtualService(address: dVIP, port: 81, mode: .fullnat))
        }
        #expect(throws: DirectorConfigurationError.maglevTableSizeNotPrime(1000)) {
            try core.addService(VirtualService(address: dVIP, port: 82, scheduler: .mh, maglevTableSize: 1000))
        }
        #expect(throws: DirectorConfigurationError.duplicateReal(dReal1, 80)) {
            try core.addReal(RealServer(address: dReal1), to: ServiceID(rawValue: 0))
            try core.addReal(RealServer(address: dReal1), to: ServiceID(rawValue: 0))
        }
        #expect(core.service(.tcp, address: dVIP, port: 80) == ServiceID(rawValue: 0))
        #expect(core.isVirtualAddress(dVIP) && !core.isVirtualAddress(dReal1))
    }
}

@Suite struct DirectorPersistenceTests {
    @Test func aTemplatePinsAClientUntilItExpires() {
        let core = directorCore(.dr, persistence: Persistence(timeout: 300))
        let other = IPv4Address(11, 0, 0, 2)
        let third = IPv4Address(11, 0, 0, 3)
        #expect(core.inbound(SYN, port: 1, at: 0).realAddress == dReal1)
        #expect(core.inbound(SYN, port: 1, from: other, at: 0).realAddress == dReal2)
        // rr would give real 1 next, but the client is pinned to real 1 … 
        #expect(core.inbound(SYN, port: 2, at: 1).realAddress == dReal1)
        #expect(core.inbound(SYN, port: 3, at: 2).realAddress == dReal1)
        #expect(core.counts(0).persistent == 1 && core.counts(1).persistent == 1)
        #expect(core.counters.templatesCreated == 2)
        #expect(core.inbound(SYN, port: 1, from: third, at: 3).realAddress == dReal1)
        // All of the client's connections close at t = 10 (ESTABLISHED, then RST: CLOSE, 10 s).
        for p in UInt16(1)...3 {
            _ = core.inbound(ACK, port: p, at: 10)
            #expect(core.inbound(RST, port: p, at: 10).state == .close)
        }
        core.expire(now: .seconds(20))
        #expect(core.table.count == 5)          // 3 templates + 2 connections of the others
        // The template was last used at t = 2: it lives until 302.
        core.expire(now: .seconds(301.9))
        #expect(core.counts(0).persistent == 2)
        core.expire(now: .seconds(302))
        #expect(core.counts(0).persistent == 1)
        #expect(core.counters.templatesExpired == 2)    // `other`'s (last used at 0) went at 300
        // Unpinned now: rr's next pick (after `third` got real 1) is real 2.
        #expect(core.inbound(SYN, port: 4, at: 303).realAddress == dReal2)
    }

    @Test func aTemplateOutlivesItsTimeoutWhileItControlsConnections() {
        let core = directorCore(.dr, persistence: Persistence(timeout: 10))
        _ = core.inbound(SYN, port: 1, at: 0)
        _ = core.inbound(ACK, port: 1, at: 0)          // ESTABLISHED until 900
        core.expire(now: .seconds(50))
        #expect(core.table.count == 2 && core.counts(0).persistent == 1)
        _ = core.inbound(SYN, port: 2, from: IPv4Address(9, 9, 9, 9), at: 50)   // takes real 2 from rr
        #expect(core.inbound(SYN, port: 3, at: 50).realAddress == dReal1)      // still pinned
        _ = core.inbound(RST, port: 1, at: 60)
        _ = core.inbound(ACK, port: 3, at: 60)
        _ = core.inbound(RST, port: 3, at: 60)
        core.expire(now: .seconds(70))                    // connections gone …
        #expect(core.counts(0).persistent == 1)
        core.expire(now: .seconds(85))                    // … template re-armed for 10 s at 70 or before
        #expect(core.counts(0).persistent == 0)
    }

    @Test func aNetmaskPinsAWholeClientNetwork() {
        let core = directorCore(.dr, persistence: Persistence(timeout: 60, netmaskLength: 24))
        let a = core.inbound(SYN, port: 1, from: IPv4Address(11, 0, 0, 5), at: 0)
        let b = core.inbound(SYN, port: 1, from: IPv4Address(11, 0, 0, 9), at: 0)
        let c = core.inbound(SYN, port: 1, from: IPv4Address(11, 0, 1, 9), at: 0)
        #expect(a.realAddress == dReal1 && b.realAddress == dReal1 && c.realAddress == dReal2)
        let templates = core.connections(now: .seconds(0)).filter(\.isTemplate).map(\.client)
        #expect(Set(templates) == [IPv4Address(11, 0, 0, 0), IPv4Address(11, 0, 1, 0)])
    }

    @Test func templatesOfUnavailableRealsStopPinning() throws {
        let core = directorCore(.dr, persistence: Persistence(timeout: 300))
        let real1 = RealServerID(service: ServiceID(rawValue: 0), index: 0)
        #expect(core.inbound(SYN, port: 1, at: 0).realAddress == dReal1)
        try core.setEnabled(false, for: real1)
        #expect(core.inbound(SYN, port: 2, at: 1).realAddress == dReal2)     // re-pinned
        #expect(core.inbound(ACK, port: 1, at: 1).realAddress == dReal1)     // old connection continues
        #expect(core.counters.templatesInvalidated == 1)
        #expect(core.counts(0).persistent == 1 && core.counts(1).persistent == 1)   // old one waits for its connection
        _ = core.inbound(RST, port: 1, at: 2)
        core.expire(now: .seconds(12.5))
        core.expire(now: .seconds(14))       // the invalidated template is looked at again within a second
        #expect(core.counts(0).persistent == 0)

        // Weight 0: the contract's default stops pinning; IPVS's sysctl default keeps pinning.
        for (expireQuiescent, expected) in [(true, dReal2), (false, dReal1)] {
            let c = directorCore(.dr, persistence: Persistence(timeout: 300)) { $0.expireQuiescentTemplate = expireQuiescent }
            _ = c.inbound(SYN, port: 1, at: 0)
            try c.setWeight(0, for: real1)
            #expect(c.inbound(SYN, port: 2, at: 1).realAddress == expected)
        }
    }

    @Test func persistenceNeedsRoomForTheTemplateToo() {
        let core = directorCore(.dr, persistence: Persistence(timeout: 300)) { $0.maxConnections = 3; $0.dropEmbryonic = false }
        #expect(core.inbound(SYN, port: 1, at: 0).outcome == .created)             // template + connection
        #expect(core.inbound(SYN, port: 1, from: dReal2, at: 0).outcome == .refused(.tableFull))   // needs 2, 1 free
        #expect(core.inbound(SYN, port: 2, at: 0).outcome == .created)             // template exists: needs 1
        #expect(core.table.count == 3)
    }
}

@Suite struct DirectorFullNATTests {
    static let local1 = IPv4Address(192, 168, 0, 1)
    static let local2 = IPv4Address(192, 168, 0, 2)

    @Test func portsAreHandedOutReleasedAndReused() {
        let core = directorCore(.fullnat, localAddresses: [Self.local1]) { $0.localPortRange = 5000...5003 }
        var decisions: [Decision] = []
        for p in UInt16(1)...4 {
            let d = core.inbound(SYN, port: p, at: 0)
            #expect(d.outcome == .created && d.mode == .fullnat && d.localAddress == Self.local1)
            decisions.append(d)
        }
        #expect(decisions.map(\.localPort) == [5000, 5001, 5002, 5003])
        #expect(core.inbound(SYN, port: 5, at: 0).outcome == .refused(.localPortsExhausted))
        #expect(core.counters.refusedLocalPortsExhausted == 1)
        // Replies come to local:port, and name the client to restore.
        let r = core.lookupReply(.tcp, from: decisions[1].realAddress, fromPort: 80, to: Self.local1, toPort: 5001,
                                 tcpFlags: SYN | ACK, now: .seconds(0))
        #expect(r.found && r.mode == .fullnat && r.clientAddress == dClient && r.clientPort == 2 && r.virtualAddress == dVIP)
        #expect(!core.lookupReply(.tcp, from: decisions[0].realAddress, fromPort: 80, to: Self.local1, toPort: 5001,
                                  tcpFlags: ACK, now: .seconds(0)).found)
        // Release on close + expiry, reuse.
        _ = core.inbound(ACK, port: 2, at: 1)
        #expect(core.inbound(RST, port: 2, at: 1).state == .close)
        core.expire(now: .seconds(11))
        #expect(core.snapshot().localPorts == [DirectorSnapshot.LocalPorts(address: Self.local1, inUse: 3, capacity: 4)])
        let again = core.inbound(SYN, port: 6, at: 12)
        #expect(again.localPort == 5001)
    }

    @Test func localAddressesAreUsedInTurn() {
        let core = directorCore(.fullnat, localAddresses: [Self.local1, Self.local2]) { $0.localPortRange = 6000...6001 }
        let got = (UInt16(1)...4).map { core.inbound(SYN, port: $0, at: 0) }
        #expect(got.map(\.localAddress) == [Self.local1, Self.local2, Self.local1, Self.local2])
        #expect(got.map(\.localPort) == [6000, 6000, 6001, 6001])
        #expect(core.inbound(SYN, port: 5, at: 0).outcome == .refused(.localPortsExhausted))
    }

    @Test func noTwoLiveConnectionsShareALocalPortOverManyRandomOperations() {
        let core = directorCore(.fullnat, localAddresses: [Self.local1, Self.local2]) {
            $0.localPortRange = 1024...1100
            $0.maxConnections = 4096
            $0.timeouts.close = 0.001
        }
        var rng = SeededRandom(seed: 99)
        var live: [UInt16: Decision] = [:]     // client port → decision
        var now = 0.0
        var nextPort: UInt16 = 1
        for _ in 0..<6000 {
            now += 0.01
            if live.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                let d = core.inbound(SYN, port: nextPort, at: now)
                if live.count == 2 * 77 {
                    #expect(d.outcome == .refused(.localPortsExhausted))
                } else {
                    #expect(d.outcome == .created)
                    #expect(core.inbound(ACK, port: nextPort, at: now).state == .established)
                    live[nextPort] = d
                }
                nextPort &+= 1
            } else {
                let p = live.keys.randomElement(using: &rng)!
                _ = core.inbound(RST, port: p, at: now)      // CLOSE: 1 ms here
                now += 0.001
                core.expire(now: .seconds(now))              // gone now
                live[p] = nil
            }
            if Int.random(in: 0..<50, using: &rng) == 0 {
                let pairs = live.values.map { "\($0.localAddress!):\($0.localPort!)" }
                #expect(Set(pairs).count == pairs.count)
                #expect(core.table.count == live.count)
                for (port, d) in live {
                    let r = core.lookupReply(.tcp, from: d.realAddress, fromPort: 80, to: d.localAddress!, toPort: d.localPort!,
                                             tcpFlags: ACK, now: .seconds(now))
                    #expect(r.found && r.clientPort == port)
                }
            }
        }
        let used = core.snapshot().localPorts.map(\.inUse).reduce(0, +)
        #expect(used == live.count)
    }

    @Test func thePoolItself() {
        var pool = LocalPortPool(address: Self.local1, range: 10...13)
        #expect((0..<4).map { _ in pool.allocate() } == [10, 11, 12, 13])
        #expect(pool.allocate() == nil)
        pool.release(12)
        pool.release(10)
        #expect(pool.allocate() == 12 && pool.allocate() == 10)   // FIFO: least recently released first
        var rng = SeededRandom(seed: 5)
        var big = LocalPortPool(address: Self.local1)
        var inUse = Set<UInt16>()
        for _ in 0..<200_000 {
            if inUse.isEmpty || Bool.random(using: &rng) {
                guard let p = big.allocate() else { #expect(inUse.count == 64512); continue }
                #expect(!inUse.contains(p) && (1024...65535).contains(p))
                inUse.insert(p)
            } else {
                let p = inUse.randomElement(using: &rng)!
                big.release(p)
                inUse.remove(p)
            }
        }
        #expect(big.usedCount == inUse.count)
    }
}

@Suite struct DirectorTableMemoryTests {
    @Test func theTableTakesItsMemoryFromTheGivenAllocator() {
        final class Ledger: @unchecked Sendable { var live = 0 }
        let ledger = Ledger()
        let memory = TableMemory(allocate: { n, a in ledger.live += n; return UnsafeMutableRawPointer.allocate(byteCount: n, alignment: a) },
                                 deallocate: { p, n in ledger.live -= n; p.deallocate() })
        do {
            let core = directorCore(.dr) { $0.maxConnections = 100; $0.tableMemory = memory }
            #expect(ledger.live == 100 * 64 + 2 * 256 * 8)
            #expect(core.inbound(SYN, at: 0).outcome == .created)
        }
        #expect(ledger.live == 0)
    }
}
