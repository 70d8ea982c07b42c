import Testing
import Wire
@testable import Datapath

// Fixtures of the Director element tests: DESIGN.md's lvs topology, and
// frames built here independently of the code under test (own RFC 1071
// sums, no Wire rewrite helpers), so an output compared byte for byte with
// a frame built from scratch also checks every checksum the element
// updated incrementally. `DE.checksumProblem` recomputes them all.
//
//   client 123.123.123.123 ── gw 10.0.0.254 (02:00:00:00:00:fe)
//                              │ 10.0.0.0/24, port 0 of the director
//     lvs 10.0.0.2 (02:00:00:00:00:02)   rs1 10.0.0.1 (…:01)   rs2 10.0.0.3 (…:03)
//     VIP 10.0.0.100:80, FULLNAT local address 10.0.0.200

enum DE {
    static let lvsMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let gwMAC = MACAddress(0x02, 0, 0, 0, 0, 0xfe)
    static let rs1MAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let rs2MAC = MACAddress(0x02, 0, 0, 0, 0, 0x03)
    static let lvs = IPv4Address(10, 0, 0, 2)
    static let gw = IPv4Address(10, 0, 0, 254)
    static let rs1 = IPv4Address(10, 0, 0, 1)
    static let rs2 = IPv4Address(10, 0, 0, 3)
    static let client = IPv4Address(123, 123, 123, 123)
    static let vip = IPv4Address(10, 0, 0, 100)
    static let local = IPv4Address(10, 0, 0, 200)

    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10, fin: UInt8 = 0x01, rst: UInt8 = 0x04, psh: UInt8 = 0x08

    static func configuration(_ mode: ForwardingMode, scheduler: SchedulerKind = .rr, proto: TransportProtocol = .tcp,
                              reals: [RealServer] = [RealServer(address: rs1), RealServer(address: rs2)],
                              persistence: Persistence? = nil, mtu: Int = 1500) -> Director.Configuration {
        var c = Director.Configuration(
            interfaces: [Director.Interface(name: "eth0", mac: lvsMAC, addresses: [IPv4Prefix(address: lvs, length: 24)], mtu: mtu)],
            routes: [.defaultRoute(via: gw)],
            services: [Director.Service(VirtualService(address: vip, port: 80, proto: proto, scheduler: scheduler, mode: mode,
                                                       persistence: persistence,
                                                       localAddresses: mode == .fullnat ? [local] : []),
                                        reals: reals)])
        c.core.maxConnections = 1024
        return c
    }

    static func director(_ mode: ForwardingMode, scheduler: SchedulerKind = .rr, proto: TransportProtocol = .tcp,
                         reals: [RealServer] = [RealServer(address: rs1), RealServer(address: rs2)],
                         mtu: Int = 1500, configure: (inout Director.Configuration) -> Void = { _ in }) -> Director {
        var c = configuration(mode, scheduler: scheduler, proto: proto, reals: reals, mtu: mtu)
        configure(&c)
        return try! Director(configuration: c)
    }

    /// The gateway and both reals ask for the director's address, so it
    /// learns them (and answers).
    static func learnNeighbours(_ driver: ElementDriver, at t: Double = 0) {
        for (mac, ip) in [(gwMAC, gw), (rs1MAC, rs1), (rs2MAC, rs2)] {
            let out = driver.send(arp(.request, from: mac, ip, asking: lvs), on: PortID(0), at: .seconds(t))
            precondition(out.verdict == .forward(PortID(0)))
        }
    }

    // MARK: Frames

    enum ARPOp: UInt16 { case request = 1, reply = 2 }

    /// An ARP frame (42 bytes, or padded to `padTo`).
    static func arp(_ op: ARPOp, from sha: MACAddress, _ spa: IPv4Address, asking tpa: IPv4Address,
                    tha: MACAddress = .zero, ethDestination: MACAddress = .broadcast, padTo: Int = 42) -> [UInt8] {
        var f = mac(ethDestination) + mac(sha) + [0x08, 0x06]
        f += [0x00, 0x01, 0x08, 0x00, 6, 4, 0, UInt8(op.rawValue)]
        f += mac(sha) + ip(spa) + mac(tha) + ip(tpa)
        return f + [UInt8](repeating: 0, count: max(0, padTo - f.count))
    }

    /// A reply as the director must send it: `who` answers `asker`.
    static func arpReply(_ who: IPv4Address, to askerMAC: MACAddress, _ asker: IPv4Address, padTo: Int = 42) -> [UInt8] {
        arp(.reply, from: lvsMAC, who, asking: asker, tha: askerMAC, ethDestination: askerMAC, padTo: padTo)
    }

    static func mac(_ m: MACAddress) -> [UInt8] { (0..<6).map { m[$0] } }
    static func ip(_ a: IPv4Address) -> [UInt8] { (0..<4).map { a[$0] } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xffff)) }

    /// RFC 1071 one's-complement sum of `bytes` (odd tail padded), folded, not complemented.
    static func sum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
        var s = initial
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { s += UInt32(bytes[i]) << 8 }
        while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
        return UInt16(s)
    }

    static func pseudoSum(_ src: ArraySlice<UInt8>, _ dst: ArraySlice<UInt8>, proto: UInt8, length: Int) -> UInt32 {
        UInt32(sum(src + dst + [0, proto] + be16(UInt16(length))))
    }

    /// One IPv4 packet in an Ethernet frame, described by its fields.
    struct Packet {
        enum Transport {
            case tcp(sport: UInt16, dport: UInt16, flags: UInt8, seq: UInt32 = 1000, ack: UInt32 = 0)
            /// `checksum: false` sends 0 ("no checksum").
            case udp(sport: UInt16, dport: UInt16, checksum: Bool = true)
            case icmp(type: UInt8, code: UInt8 = 0, rest: UInt32 = 0)
            /// Anything else, bytes as given (protocol 4: an inner packet).
            case raw(proto: UInt8)
        }

        var srcMAC: MACAddress
        var dstMAC: MACAddress
        var src: IPv4Address
        var dst: IPv4Address
        var transport: Transport
        var payload: [UInt8] = []
        var ttl: UInt8 = 63
        var id: UInt16 = 0x1c46
        var df = true
        var tos: UInt8 = 0
        /// The whole flags + fragment offset word, overriding `df`.
        var flagsAndOffset: UInt16? = nil
        /// Ethernet padding up to this frame length (60 = minimum frame without FCS).
        var padTo = 0

        var proto: UInt8 {
            switch transport {
            case .tcp: 6
            case .udp: 17
            case .icmp: 1
            case .raw(let p): p
            }
        }

        var transportBytes: [UInt8] {
            switch transport {
            case let .tcp(sport, dport, flags, seq, ack):
                var h = be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, flags] + be16(64240) + [0, 0, 0, 0] + payload
                let c = ~DE.sum(h[...], initial: DE.pseudoSum(ip(src)[...], ip(dst)[...], proto: 6, length: h.count))
                h[16] = UInt8(c >> 8); h[17] = UInt8(c & 0xff)
                return h
            case let .udp(sport, dport, checksum):
                var h = be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
                if checksum {
                    var c = ~DE.sum(h[...], initial: DE.pseudoSum(ip(src)[...], ip(dst)[...], proto: 17, length: h.count))
                    if c == 0 { c = 0xffff }
                    h[6] = UInt8(c >> 8); h[7] = UInt8(c & 0xff)
                }
                return h
            case let .icmp(type, code, rest):
                var h = [type, code, 0, 0] + be32(rest) + payload
                let c = ~DE.sum(h[...])
                h[2] = UInt8(c >> 8); h[3] = UInt8(c & 0xff)
                return h
            case .raw:
                return payload
            }
        }

        /// The IPv4 datagram: header (checksum computed) and transport.
        var ipPacket: [UInt8] {
            let l4 = transportBytes
            var h: [UInt8] = [0x45, tos] + be16(UInt16(20 + l4.count)) + be16(id) + be16(flagsAndOffset ?? (df ? 0x4000 : 0))
            h += [ttl, proto, 0, 0]
            h += ip(src) + ip(dst)
            let c = ~DE.sum(h[...])
            h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xff)
            return h + l4
        }

        var frame: [UInt8] {
            let f = mac(dstMAC) + mac(srcMAC) + [0x08, 0x00] + ipPacket
            return f + [UInt8](repeating: 0, count: max(0, padTo - f.count))
        }

        /// The same packet with some fields changed.
        func with(_ change: (inout Packet) -> Void) -> Packet {
            var p = self
            change(&p)
            return p
        }
    }

    /// A TCP segment.
    static func tcp(_ srcMAC: MACAddress, _ dstMAC: MACAddress, _ src: IPv4Address, _ sport: UInt16,
                    _ dst: IPv4Address, _ dport: UInt16, _ flags: UInt8, seq: UInt32 = 1000, ack: UInt32 = 0,
                    ttl: UInt8 = 63, payload: [UInt8] = []) -> Packet {
        Packet(srcMAC: srcMAC, dstMAC: dstMAC, src: src, dst: dst,
               transport: .tcp(sport: sport, dport: dport, flags: flags, seq: seq, ack: ack), payload: payload, ttl: ttl)
    }

    /// A client → VIP:80 TCP segment as the gateway delivers it.
    static func fromClient(_ flags: UInt8, sport: UInt16 = 40000, seq: UInt32 = 1000, ack: UInt32 = 0,
                           payload: [UInt8] = [], client: IPv4Address = client, vip: IPv4Address = vip,
                           dport: UInt16 = 80, ttl: UInt8 = 63) -> Packet {
        tcp(gwMAC, lvsMAC, client, sport, vip, dport, flags, seq: seq, ack: ack, ttl: ttl, payload: payload)
    }

    /// What TUN sends for `arriving`: its datagram with the TTL one less
    /// (header checksum fixed) inside an IPIP header director → `real`
    /// whose TTL is that decremented one (as IPVS), DF and TOS copied;
    /// identification 0 with DF (atomic, RFC 6864), else the director's
    /// counter `id`.
    static func tunnelled(_ arriving: Packet, to real: IPv4Address, realMAC: MACAddress, id: UInt16 = 0) -> Packet {
        precondition(!arriving.df || id == 0, "an atomic outer datagram has identification 0")
        let inner = arriving.with { $0.ttl -= 1 }
        return Packet(srcMAC: lvsMAC, dstMAC: realMAC, src: lvs, dst: real, transport: .raw(proto: 4),
                      payload: inner.ipPacket, ttl: inner.ttl, id: id, df: inner.df, tos: inner.tos)
    }

    // MARK: Checking outputs

    /// nil if every checksum in the frame verifies by full recomputation
    /// (IPv4 header; TCP/UDP with the pseudo-header; ICMP; the inner
    /// datagram of IPIP), else what is wrong.
    static func checksumProblem(_ frame: [UInt8]) -> String? {
        guard frame.count >= 14 else { return "runt" }
        let type = UInt16(frame[12]) << 8 | UInt16(frame[13])
        if type == 0x0806 { return frame.count >= 42 ? nil : "short ARP" }
        guard type == 0x0800 else { return "ethertype \(type)" }
        return ipv4ChecksumProblem(frame[14...])
    }

    static func ipv4ChecksumProblem(_ p: ArraySlice<UInt8>) -> String? {
        let b = p.startIndex
        guard p.count >= 20, p[b] >> 4 == 4 else { return "not IPv4" }
        let ihl = Int(p[b] & 0x0f) * 4
        let total = Int(p[b + 2]) << 8 | Int(p[b + 3])
        guard ihl >= 20, total >= ihl, total <= p.count else { return "bad lengths" }
        guard sum(p[b..<b + ihl]) == 0xffff else { return "IPv4 header checksum" }
        let fragment = (UInt16(p[b + 6]) << 8 | UInt16(p[b + 7])) & 0x3fff != 0
        if fragment { return nil }  // the transport checksum spans fragments
        let l4 = p[(b + ihl)..<(b + total)]
        let src = p[(b + 12)..<(b + 16)], dst = p[(b + 16)..<(b + 20)]
        switch p[b + 9] {
        case 6:
            return sum(l4, initial: pseudoSum(src, dst, proto: 6, length: l4.count)) == 0xffff ? nil : "TCP checksum"
        case 17:
            if l4[l4.startIndex + 6] == 0 && l4[l4.startIndex + 7] == 0 { return nil }
            return sum(l4, initial: pseudoSum(src, dst, proto: 17, length: l4.count)) == 0xffff ? nil : "UDP checksum"
        case 1:
            return sum(l4) == 0xffff ? nil : "ICMP checksum"
        case 4:
            return ipv4ChecksumProblem(l4).map { "inner: " + $0 }
        default:
            return nil
        }
    }

    // MARK: Tables

    /// Katran-style row: one frame in, the verdict, the frame out byte for
    /// byte (forwards), and the frames emitted.
    struct Row: CustomStringConvertible {
        var description: String
        var input: [UInt8]
        var at: Double = 1
        var verdict: Verdict
        var output: [UInt8]? = nil
        var emitted: [ElementDriver.Emitted] = []
    }

    /// Runs the rows in order and checks each; every forwarded or emitted
    /// IPv4 frame must carry valid checksums.
    static func run(_ rows: [Row], _ driver: ElementDriver, sourceLocation: SourceLocation = #_sourceLocation) {
        for row in rows {
            let out = driver.send(row.input, on: PortID(0), at: .seconds(row.at))
            #expect(out.verdict == row.verdict, "\(row.description)", sourceLocation: sourceLocation)
            if let expected = row.output {
                #expect(out.frame == expected, "\(row.description): frame out\n\(hex(out.frame))\nexpected\n\(hex(expected))",
                        sourceLocation: sourceLocation)
            }
            if case .forward = out.verdict {
                #expect(checksumProblem(out.frame) == nil, "\(row.description): \(checksumProblem(out.frame) ?? "")",
                        sourceLocation: sourceLocation)
            }
            #expect(out.emitted == row.emitted, "\(row.description): emitted \(out.emitted.map { hex($0.frame) })",
                    sourceLocation: sourceLocation)
            for e in out.emitted {
                #expect(checksumProblem(e.frame) == nil, "\(row.description): emitted \(checksumProblem(e.frame) ?? "")",
                        sourceLocation: sourceLocation)
            }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: bytes.count, by: 16).map { i in
            bytes[i..<min(i + 16, bytes.count)].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}

/// The fixtures themselves: frames the builder makes are what Wire parses
/// and what tcpdump calls correct, and the checker catches a broken checksum.
@Suite struct DirectorElementFramesTests {
    /// `tcpdump -vv -nn -r` on this frame (written to a pcap by a separate
    /// script): "IP (tos 0x0, ttl 63, id 7238, offset 0, flags [DF], proto
    /// TCP (6), length 40) 123.123.123.123.40000 > 10.0.0.100.80: Flags [S],
    /// cksum 0x131f (correct), seq 1000, win 64240, length 0"
    static let synFixture: [UInt8] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x40, 0x00, 0x3f, 0x06, 0x1e, 0x30,
        0x7b, 0x7b, 0x7b, 0x7b, 0x0a, 0x00, 0x00, 0x64,
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0,
        0x13, 0x1f, 0x00, 0x00,
    ]

    @Test func builderMatchesTcpdumpFixture() {
        #expect(DE.fromClient(DE.syn).frame == Self.synFixture)
    }

    @Test func builtFramesParseAsDescribed() throws {
        let udp = DE.Packet(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: DE.client, dst: DE.vip,
                            transport: .udp(sport: 5353, dport: 53), payload: Array("hello".utf8), padTo: 60)
        for packet in [DE.fromClient(DE.syn | DE.ack, payload: [1, 2, 3]), udp] {
            let frame = packet.frame
            let p = try frame.withUnsafeBytes { try FrameParser().parse($0) }
            #expect(p.sourceIPv4 == packet.src && p.destinationIPv4 == packet.dst && p.timeToLive == packet.ttl)
            #expect(p.sourcePort == (packet.proto == 6 ? 40000 : 5353))
            #expect(DE.checksumProblem(frame) == nil)
        }
        #expect(udp.frame.count == 60)
    }

    @Test func checkerCatchesEveryBrokenChecksum() {
        let frame = DE.fromClient(DE.syn, payload: [9, 9]).frame
        #expect(DE.checksumProblem(frame) == nil)
        var badIP = frame; badIP[24] ^= 1
        #expect(DE.checksumProblem(badIP) == "IPv4 header checksum")
        var badTCP = frame; badTCP[frame.count - 1] ^= 1
        #expect(DE.checksumProblem(badTCP) == "TCP checksum")
        let inner = DE.fromClient(DE.syn)
        var tunnelled = DE.tunnelled(inner, to: DE.rs1, realMAC: DE.rs1MAC).frame
        #expect(DE.checksumProblem(tunnelled) == nil)
        tunnelled[tunnelled.count - 3] ^= 0x10
        #expect(DE.checksumProblem(tunnelled) == "inner: TCP checksum")
    }
}
