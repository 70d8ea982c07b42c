import Testing
import Wire
@testable import Datapath

// DESIGN.md's table, mode by mode, as Katran-style rows: a frame in, the
// verdict, the frame out byte for byte (built from scratch with the fields
// the mode must leave), checksums recomputed in full.

@Suite struct DirectorElementModeTests {
    typealias P = DE.Packet

    // MARK: DR

    /// DR: only the MACs change (src = director, dst = real) and the TTL
    /// (with the header checksum); addresses and ports stay.
    @Test func directRoutingRewritesOnlyMACsAndTTL() {
        let driver = ElementDriver(DE.director(.dr))
        DE.learnNeighbours(driver)
        func toReal(_ p: P, _ mac: MACAddress) -> [UInt8] {
            p.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = mac; $0.ttl -= 1 }.frame
        }
        let syn = DE.fromClient(DE.syn)
        let ack = DE.fromClient(DE.ack, seq: 1001, ack: 5001)
        let data = DE.fromClient(DE.psh | DE.ack, seq: 1001, ack: 5001, payload: Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let other = DE.fromClient(DE.syn, sport: 40001)
        let padded = DE.fromClient(DE.ack, sport: 40001, seq: 1001, ack: 7001).with { $0.padTo = 60 }
        DE.run([
            DE.Row(description: "SYN to VIP:80 → rs1, MACs and TTL only", input: syn.frame, verdict: .forward(PortID(0)),
                   output: toReal(syn, DE.rs1MAC)),
            DE.Row(description: "ACK of the same flow → rs1", input: ack.frame, verdict: .forward(PortID(0)),
                   output: toReal(ack, DE.rs1MAC)),
            DE.Row(description: "data of the same flow → rs1", input: data.frame, verdict: .forward(PortID(0)),
                   output: toReal(data, DE.rs1MAC)),
            DE.Row(description: "a new flow → rs2 (round robin)", input: other.frame, verdict: .forward(PortID(0)),
                   output: toReal(other, DE.rs2MAC)),
            DE.Row(description: "Ethernet padding is kept as it came", input: padded.frame, verdict: .forward(PortID(0)),
                   output: toReal(padded, DE.rs2MAC)),
        ], driver)
    }

    /// UDP through DR, with and without a UDP checksum.
    @Test func directRoutingUDP() {
        let driver = ElementDriver(DE.director(.dr, proto: .udp))
        DE.learnNeighbours(driver)
        let query = P(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: DE.client, dst: DE.vip,
                      transport: .udp(sport: 5353, dport: 80), payload: Array("ping".utf8))
        let bare = query.with { $0.transport = .udp(sport: 5354, dport: 80, checksum: false) }
        DE.run([
            DE.Row(description: "UDP datagram → rs1", input: query.frame, verdict: .forward(PortID(0)),
                   output: query.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.ttl = 62 }.frame),
            DE.Row(description: "UDP without checksum → rs2, still without", input: bare.frame, verdict: .forward(PortID(0)),
                   output: bare.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs2MAC; $0.ttl = 62 }.frame),
        ], driver)
    }

    // MARK: TUN

    /// TUN: the datagram with its TTL one less (63 → 62, header checksum
    /// fixed, nothing else changed) inside a new IPv4 header, protocol 4,
    /// director → real, DF and TOS copied, outer TTL = the decremented
    /// inner one (as IPVS), identification 0 with DF (atomic, RFC 6864)
    /// and the director's counter without; the headroom the
    /// driver poisons with 0xa5 must not show anywhere.
    @Test func tunnelEncapsulatesTheDatagramOneHopOlder() {
        let driver = ElementDriver(DE.director(.tun))
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn).with { $0.tos = 0x28 }
        let ack = DE.fromClient(DE.ack, seq: 1001, ack: 5001)
        let other = DE.fromClient(DE.syn, sport: 40001).with { $0.df = false; $0.padTo = 60 }
        let lastHop = DE.fromClient(DE.syn, sport: 40002, ttl: 2)
        DE.run([
            DE.Row(description: "SYN → IPIP to rs1", input: syn.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(syn, to: DE.rs1, realMAC: DE.rs1MAC).frame),
            DE.Row(description: "ACK of the same flow → rs1", input: ack.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(ack, to: DE.rs1, realMAC: DE.rs1MAC).frame),
            DE.Row(description: "new flow → rs2; DF clear copied (the counter's ID); Ethernet padding not tunnelled",
                   input: other.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(other.with { $0.padTo = 0 }, to: DE.rs2, realMAC: DE.rs2MAC, id: 1).frame),
            DE.Row(description: "TTL 2 → rs1 with inner and outer TTL 1 (TTL 1 gets time exceeded, timeExceeded)",
                   input: lastHop.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(lastHop, to: DE.rs1, realMAC: DE.rs1MAC).frame),
        ], driver)
        let out = driver.send(DE.fromClient(DE.ack, seq: 1001, ack: 5001).frame, on: PortID(0), at: .seconds(2))
        let arriving = DE.fromClient(DE.ack, seq: 1001, ack: 5001).ipPacket
        let inner = Array(out.frame.dropFirst(14 + 20))
        // The inner datagram differs from the arriving one in the TTL and
        // the header checksum only (bytes 8, 10, 11).
        #expect(inner.count == arriving.count && (0..<inner.count).filter { inner[$0] != arriving[$0] }.allSatisfy { [8, 10, 11].contains($0) })
        #expect(inner[8] == arriving[8] - 1 && out.frame[14 + 8] == inner[8], "outer TTL = inner TTL = arriving − 1")
    }

    /// The outer header field by field, read back with Wire's decapsulation.
    @Test func tunnelOuterHeaderFields() throws {
        let driver = ElementDriver(DE.director(.tun))
        DE.learnNeighbours(driver)
        let inner = DE.fromClient(DE.syn, payload: [1, 2, 3, 4, 5])
        let out = driver.send(inner.frame, on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .forward(PortID(0)))
        #expect(out.frame.count == inner.frame.count + 20)
        #expect(Array(out.frame[0..<14]) == DE.mac(DE.rs1MAC) + DE.mac(DE.lvsMAC) + [0x08, 0x00])
        try out.frame.withUnsafeBytes { bytes in
            let d = try IPIP.decapsulate(UnsafeRawBufferPointer(rebasing: bytes[14...]))
            #expect(d.outer.protocol == .ipip && d.outer.headerLength == 20 && d.outer.totalLength == 20 + inner.ipPacket.count)
            #expect(d.outer.sourceAddress == DE.lvs && d.outer.destinationAddress == DE.rs1)
            #expect(d.outer.dontFragment && !d.outer.moreFragments && d.outer.fragmentOffset == 0)
            #expect(d.outer.identification == 0, "atomic (RFC 6864 §4.1): ID 0, as Linux")
            #expect(d.outer.timeToLive == 62 && d.outer.isChecksumValid)
            #expect(d.inner.timeToLive == 62 && d.inner.isChecksumValid, "the inner TTL is decremented too, as IPVS")
            #expect(Array(d.inner.bytes[0..<d.inner.totalLength]) == inner.with { $0.ttl = 62 }.ipPacket)
        }
    }

    /// DF set and 20 more bytes would not fit: Fragmentation Needed (type 3
    /// code 4, next-hop MTU = 1500 − 20) to the client through the gateway,
    /// quoting 548 bytes of the datagram as it came; nothing is sent on.
    @Test func tunnelFragmentationNeeded() {
        let driver = ElementDriver(DE.director(.tun))
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn)
        let big = DE.fromClient(DE.ack, seq: 1001, ack: 5001, payload: [UInt8](repeating: 0x61, count: 1460))
        #expect(big.ipPacket.count == 1500)
        let icmp = P(srcMAC: DE.lvsMAC, dstMAC: DE.gwMAC, src: DE.lvs, dst: DE.client,
                     transport: .icmp(type: 3, code: 4, rest: 1480), payload: Array(big.ipPacket[0..<548]),
                     ttl: 64, id: 1, df: false, tos: 0xc0)   // the counter: the DF tunnels take 0
        let fits = DE.fromClient(DE.ack, seq: 1001, ack: 5001, payload: [UInt8](repeating: 0x62, count: 1440))
        DE.run([
            DE.Row(description: "SYN tunnelled (DF: id 0)", input: syn.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(syn, to: DE.rs1, realMAC: DE.rs1MAC).frame),
            DE.Row(description: "1500-byte DF datagram: frag-needed, MTU 1480", input: big.frame,
                   verdict: .drop(.fragmentationNeeded), emitted: [.init(port: PortID(0), frame: icmp.frame)]),
            DE.Row(description: "1480 bytes fit exactly", input: fits.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(fits, to: DE.rs1, realMAC: DE.rs1MAC).frame),
        ], driver)
        #expect(icmp.frame.count == 14 + 576)
    }

    /// DF clear and too big once tunnelled: the outer datagram is
    /// fragmented (RFC 791) — 1500 + 20 bytes become 1500 + 40.
    @Test func tunnelFragmentsWithoutDF() {
        let driver = ElementDriver(DE.director(.tun))
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn).with { $0.df = false }
        let big = DE.fromClient(DE.ack, seq: 1001, ack: 5001, payload: (0..<1460).map { UInt8($0 & 0xff) })
            .with { $0.df = false }
        let inner = big.with { $0.ttl = 62 }.ipPacket  // this hop's TTL − 1, inside too
        func fragment(_ range: Range<Int>, _ field: UInt16) -> [UInt8] {
            P(srcMAC: DE.lvsMAC, dstMAC: DE.rs1MAC, src: DE.lvs, dst: DE.rs1, transport: .raw(proto: 4),
              payload: Array(inner[range]), ttl: 62, id: 2, flagsAndOffset: field).frame
        }
        DE.run([
            DE.Row(description: "SYN", input: syn.frame, verdict: .forward(PortID(0)),
                   output: DE.tunnelled(syn, to: DE.rs1, realMAC: DE.rs1MAC, id: 1).frame),
            DE.Row(description: "1500 bytes without DF: two outer fragments", input: big.frame, verdict: .consumed,
                   emitted: [.init(port: PortID(0), frame: fragment(0..<1480, 0x2000)),
                             .init(port: PortID(0), frame: fragment(1480..<1500, 1480 / 8))]),
        ], driver)
    }

    // MARK: NAT

    /// NAT: dst ip:port → real ip:port on the way in; the real's reply
    /// (through the director) gets src = VIP:port back, towards the client
    /// through the gateway. TTL − 1 both ways.
    @Test func natRewritesBothWays() {
        let reals = [RealServer(address: DE.rs1, port: 8080), RealServer(address: DE.rs2, port: 8080)]
        let driver = ElementDriver(DE.director(.nat, reals: reals))
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn)
        let synAck = DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 8080, DE.client, 40000, DE.syn | DE.ack, seq: 5000, ack: 1001, ttl: 64)
        let ack = DE.fromClient(DE.ack, seq: 1001, ack: 5001)
        let reply = DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 8080, DE.client, 40000, DE.psh | DE.ack, seq: 5001, ack: 1001,
                           ttl: 64, payload: Array("HTTP/1.0 200 OK\r\n\r\nrs1\n".utf8))
        let other = DE.fromClient(DE.syn, sport: 40001)
        DE.run([
            DE.Row(description: "SYN: dst → rs1:8080", input: syn.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs1MAC, DE.client, 40000, DE.rs1, 8080, DE.syn, ttl: 62).frame),
            DE.Row(description: "SYN-ACK from rs1:8080: src → VIP:80, to the gateway", input: synAck.frame,
                   verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.gwMAC, DE.vip, 80, DE.client, 40000, DE.syn | DE.ack, seq: 5000, ack: 1001,
                                  ttl: 63).frame),
            DE.Row(description: "ACK → the same real", input: ack.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs1MAC, DE.client, 40000, DE.rs1, 8080, DE.ack, seq: 1001, ack: 5001,
                                  ttl: 62).frame),
            DE.Row(description: "reply data back as VIP:80", input: reply.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.gwMAC, DE.vip, 80, DE.client, 40000, DE.psh | DE.ack, seq: 5001, ack: 1001,
                                  ttl: 63, payload: reply.payload).frame),
            DE.Row(description: "new flow → rs2:8080", input: other.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs2MAC, DE.client, 40001, DE.rs2, 8080, DE.syn, ttl: 62).frame),
            DE.Row(description: "rs2 answering a flow that is rs1's is not a reply: routed untranslated", input:
                    DE.tcp(DE.rs2MAC, DE.lvsMAC, DE.rs2, 8080, DE.client, 40000, DE.ack, ttl: 64).frame,
                   verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.gwMAC, DE.rs2, 8080, DE.client, 40000, DE.ack, ttl: 63).frame),
        ], driver)
    }

    /// NAT over UDP, a checksum-less datagram included (stays 0).
    @Test func natUDP() {
        let driver = ElementDriver(DE.director(.nat, proto: .udp, reals: [RealServer(address: DE.rs1, port: 5300)]))
        DE.learnNeighbours(driver)
        func udp(_ sm: MACAddress, _ dm: MACAddress, _ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16,
                 ttl: UInt8, checksum: Bool = true) -> P {
            P(srcMAC: sm, dstMAC: dm, src: s, dst: d, transport: .udp(sport: sp, dport: dp, checksum: checksum),
              payload: Array("query".utf8), ttl: ttl)
        }
        DE.run([
            DE.Row(description: "query → rs1:5300", input: udp(DE.gwMAC, DE.lvsMAC, DE.client, 999, DE.vip, 80, ttl: 63).frame,
                   verdict: .forward(PortID(0)), output: udp(DE.lvsMAC, DE.rs1MAC, DE.client, 999, DE.rs1, 5300, ttl: 62).frame),
            DE.Row(description: "answer ← VIP:80", input: udp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 5300, DE.client, 999, ttl: 64).frame,
                   verdict: .forward(PortID(0)), output: udp(DE.lvsMAC, DE.gwMAC, DE.vip, 80, DE.client, 999, ttl: 63).frame),
            DE.Row(description: "no checksum stays none",
                   input: udp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 5300, DE.client, 999, ttl: 64, checksum: false).frame,
                   verdict: .forward(PortID(0)),
                   output: udp(DE.lvsMAC, DE.gwMAC, DE.vip, 80, DE.client, 999, ttl: 63, checksum: false).frame),
        ], driver)
    }

    // MARK: FULLNAT

    /// FULLNAT: src → local address:port, dst → real ip:port; the real
    /// answers the local address, and the director translates both back.
    @Test func fullnatRewritesBothAddresses() {
        let reals = [RealServer(address: DE.rs1, port: 8080), RealServer(address: DE.rs2, port: 8080)]
        let director = DE.director(.fullnat, reals: reals)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn)
        let synAck = DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 8080, DE.local, 1024, DE.syn | DE.ack, seq: 5000, ack: 1001, ttl: 64)
        let ack = DE.fromClient(DE.ack, seq: 1001, ack: 5001)
        let other = DE.fromClient(DE.syn, sport: 40001, client: IPv4Address(198, 51, 100, 7))
        DE.run([
            DE.Row(description: "SYN: src → 10.0.0.200:1024, dst → rs1:8080", input: syn.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs1MAC, DE.local, 1024, DE.rs1, 8080, DE.syn, ttl: 62).frame),
            DE.Row(description: "SYN-ACK to the local address: src → VIP:80, dst → client:40000", input: synAck.frame,
                   verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.gwMAC, DE.vip, 80, DE.client, 40000, DE.syn | DE.ack, seq: 5000, ack: 1001,
                                  ttl: 63).frame),
            DE.Row(description: "ACK → same real, same local port", input: ack.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs1MAC, DE.local, 1024, DE.rs1, 8080, DE.ack, seq: 1001, ack: 5001,
                                  ttl: 62).frame),
            DE.Row(description: "another client → rs2 from the next local port", input: other.frame, verdict: .forward(PortID(0)),
                   output: DE.tcp(DE.lvsMAC, DE.rs2MAC, DE.local, 1025, DE.rs2, 8080, DE.syn, ttl: 62).frame),
            DE.Row(description: "to the local address on a port no connection holds",
                   input: DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 8080, DE.local, 1999, DE.ack, ttl: 64).frame,
                   verdict: .drop(Director.Reason.noConnection)),
        ], driver)
        let c = director.connections(now: .seconds(1)).first { $0.clientPort == 40000 }
        #expect(c?.local == DE.local && c?.localPort == 1024 && c?.real == DE.rs1 && c?.realPort == 8080)
    }

    // MARK: ICMP errors about a VIP's packets

    /// A router on the client's side sends Fragmentation Needed to the VIP
    /// about a reply the VIP sent (a DR/TUN real answering as the VIP, or
    /// the director's NAT/FULLNAT translation): it goes on to the real,
    /// translated back to what that real sent (NAT, FULLNAT), its TTL one
    /// less; TUN tunnels it as any packet of the connection (inner TTL − 1,
    /// outer TTL the same). With TTL 1 it is dropped silently.
    @Test(arguments: ForwardingMode.allCases)
    func icmpErrorsAboutAConnectionReachItsReal(_ mode: ForwardingMode) {
        let port: UInt16 = mode == .nat || mode == .fullnat ? 8080 : 80
        let driver = ElementDriver(DE.director(mode, reals: [RealServer(address: DE.rs1, port: port)]))
        DE.learnNeighbours(driver)
        let router = IPv4Address(198, 51, 100, 1)
        /// The SYN-ACK as it travelled, quoted whole (40 bytes).
        func quoted(_ src: IPv4Address, _ sport: UInt16, _ dst: IPv4Address, _ dport: UInt16, tcpChecksumOf original: [UInt8]? = nil) -> [UInt8] {
            var q = DE.tcp(.zero, .zero, src, sport, dst, dport, DE.syn | DE.ack, seq: 5000, ack: 1001, ttl: 60).ipPacket
            if let o = original { q[36] = o[36]; q[37] = o[37] }
            return q
        }
        let original = quoted(DE.vip, 80, DE.client, 40000)
        let error = P(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: router, dst: DE.vip,
                      transport: .icmp(type: 3, code: 4, rest: 1400), payload: original, ttl: 60, id: 0x77, df: false)
        let expected: [UInt8]
        switch mode {
        case .dr:
            expected = error.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.ttl = 59 }.frame
        case .tun:
            expected = DE.tunnelled(error, to: DE.rs1, realMAC: DE.rs1MAC, id: 1).frame  // no DF: the counter (the SYN's DF tunnel took 0)
        case .nat:
            expected = error.with {
                $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.dst = DE.rs1; $0.ttl = 59
                $0.payload = quoted(DE.rs1, 8080, DE.client, 40000, tcpChecksumOf: original)
            }.frame
        case .fullnat:
            expected = error.with {
                $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.dst = DE.rs1; $0.ttl = 59
                $0.payload = quoted(DE.rs1, 8080, DE.local, 1024, tcpChecksumOf: original)
            }.frame
        }
        let unknown = error.with { $0.payload = quoted(DE.vip, 80, DE.client, 40001) }
        let notFromVIP = error.with { $0.payload = quoted(DE.rs1, 80, DE.client, 40000) }
        DE.run([
            DE.Row(description: "\(mode): SYN", input: DE.fromClient(DE.syn).frame, verdict: .forward(PortID(0))),
            DE.Row(description: "\(mode): frag-needed about the SYN-ACK → the real", input: error.frame,
                   verdict: .forward(PortID(0)), output: expected),
            DE.Row(description: "\(mode): about a connection that does not exist", input: unknown.frame,
                   verdict: .drop(Director.Reason.noConnection)),
            DE.Row(description: "\(mode): quoting a packet the VIP did not send", input: notFromVIP.frame,
                   verdict: .drop(Director.Reason.icmpUnhandled)),
            DE.Row(description: "\(mode): the error with TTL 1: dropped, and no error about an error",
                   input: error.with { $0.ttl = 1 }.frame, verdict: .drop(.ttlExpired)),
        ], driver)
    }

    // MARK: TCP state through the element

    enum Side { case client, real }

    /// Connection state after each packet through the element, IPVS's
    /// table (DR and TUN see only the client side: INPUT-ONLY).
    @Test(arguments: [ForwardingMode.dr, .tun, .nat, .fullnat])
    func tcpStatesFollowThePackets(_ mode: ForwardingMode) {
        let director = DE.director(mode)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let steps: [(Side, UInt8, ConnectionState)] = mode.seesReplies
            ? [(.client, DE.syn, .synRecv), (.real, DE.syn | DE.ack, .synRecv), (.client, DE.ack, .established),
               (.client, DE.psh | DE.ack, .established), (.client, DE.fin | DE.ack, .closeWait),
               (.real, DE.fin | DE.ack, .timeWait), (.client, DE.ack, .timeWait)]
            : [(.client, DE.syn, .synRecv), (.client, DE.ack, .established), (.client, DE.psh | DE.ack, .established),
               (.client, DE.fin | DE.ack, .finWait), (.client, DE.rst, .close)]
        for (n, (side, flags, state)) in steps.enumerated() {
            let t = 1 + Double(n) / 10
            let frame: [UInt8]
            switch side {
            case .client: frame = DE.fromClient(flags).frame
            case .real:
                let to = mode == .fullnat ? (DE.local, UInt16(1024)) : (DE.client, UInt16(40000))
                frame = DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 80, to.0, to.1, flags, ttl: 64).frame
            }
            let out = driver.send(frame, on: PortID(0), at: .seconds(t))
            #expect(out.verdict == .forward(PortID(0)), "\(mode) step \(n)")
            let connections = director.connections(now: .seconds(t)).filter { !$0.isTemplate }
            #expect(connections.count == 1 && connections.first?.state == state, "\(mode) step \(n): \(connections.map(\.state))")
        }
        let real = director.snapshot().services[0].reals[0]
        #expect(real.totalConnections == 1)
    }

    /// A route with two gateways (two routes of one prefix) is an ECMP
    /// group: flows spread over both gateways, and every packet of a flow
    /// leaves through the same one.
    @Test func routesOfOnePrefixAreAnECMPGroupHashedPerFlow() {
        let gw2 = IPv4Address(10, 0, 0, 253), gw2MAC = MACAddress(0x02, 0, 0, 0, 0, 0xfd)
        let director = DE.director(.nat) { $0.routes = [.defaultRoute(via: DE.gw), .defaultRoute(via: gw2)] }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let learned = driver.send(DE.arp(.request, from: gw2MAC, gw2, asking: DE.lvs), on: PortID(0), at: .seconds(0))
        #expect(learned.verdict == .forward(PortID(0)))

        var gatewayOfFlow: [UInt16: MACAddress] = [:]
        for round in 0..<2 {
            for port in UInt16(40000)..<40064 {
                let udp = P(srcMAC: DE.rs1MAC, dstMAC: DE.lvsMAC, src: DE.rs1, dst: IPv4Address(192, 0, 2, 53),
                            transport: .udp(sport: port, dport: 53), payload: Array("query".utf8))
                let out = driver.send(udp.frame, on: PortID(0), at: .seconds(1))
                #expect(out.verdict == .forward(PortID(0)), "flow \(port): \(out.verdict)")
                let destination = MACAddress(out.frame[0], out.frame[1], out.frame[2], out.frame[3], out.frame[4], out.frame[5])
                #expect(destination == DE.gwMAC || destination == gw2MAC, "flow \(port) went to \(destination)")
                if round == 0 { gatewayOfFlow[port] = destination }
                else { #expect(gatewayOfFlow[port] == destination, "flow \(port) changed gateway") }
            }
        }
        let onFirst = gatewayOfFlow.values.filter { $0 == DE.gwMAC }.count
        #expect(onFirst > 8 && onFirst < 56, "64 flows split \(onFirst):\(64 - onFirst) over the two gateways")
        #expect(director.counters.routed == 128)
    }

    /// Traffic through the director that belongs to no service is routed
    /// like a router would (the NAT reals' default gateway): MACs and TTL
    /// change, nothing else; no connection is made.
    @Test func otherTrafficThroughTheDirectorIsRouted() {
        let director = DE.director(.nat)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let ping = P(srcMAC: DE.rs1MAC, dstMAC: DE.lvsMAC, src: DE.rs1, dst: DE.client, transport: .icmp(type: 8),
                     payload: [0, 1, 0, 1])
        let back = P(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: DE.client, dst: DE.rs1, transport: .icmp(type: 0),
                     payload: [0, 1, 0, 1])
        let udp = P(srcMAC: DE.rs1MAC, dstMAC: DE.lvsMAC, src: DE.rs1, dst: IPv4Address(192, 0, 2, 53),
                    transport: .udp(sport: 40000, dport: 53), payload: Array("query".utf8))
        DE.run([
            DE.Row(description: "a real pings the client: on to the gateway", input: ping.frame, verdict: .forward(PortID(0)),
                   output: ping.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.gwMAC; $0.ttl -= 1 }.frame),
            DE.Row(description: "the echo reply comes back to the real", input: back.frame, verdict: .forward(PortID(0)),
                   output: back.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.ttl -= 1 }.frame),
            DE.Row(description: "a real's UDP lookup elsewhere: untranslated", input: udp.frame, verdict: .forward(PortID(0)),
                   output: udp.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.gwMAC; $0.ttl -= 1 }.frame),
        ], driver)
        #expect(director.counters.routed == 3)
        // TTL 1: not routed; an ICMP time exceeded goes back towards the sender.
        let expired = driver.send(udp.with { $0.ttl = 1 }.frame, on: PortID(0), at: .seconds(2))
        #expect(expired.verdict == .drop(.ttlExpired))
        #expect(expired.emitted.count == 1 && expired.emitted.first?.frame[34] == 11,
                "one ICMP time exceeded: \(expired.emitted)")
        #expect(director.counters.routed == 3)
        #expect(director.snapshot().services.allSatisfy { $0.reals.allSatisfy { $0.totalConnections == 0 } })
    }
}
