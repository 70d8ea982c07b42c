import Testing
import Wire

/// Incremental rewrites (RFC 1624) must leave exactly the checksums a full
/// recomputation (RFC 1071) would write, over many random packets.
@Suite struct RewriteTests {
    enum L4: CaseIterable { case tcp, udp, udpNoChecksum, icmp }

    /// A random Ethernet (+ maybe VLAN) + IPv4 (+ maybe options) + L4 frame
    /// with valid checksums, and the L4 kind.
    func randomIPv4Frame(_ rng: inout SplitMix64, l4: L4, fragment: Bool = false) -> [UInt8] {
        let payload = rng.bytes(Int.random(in: 0...48, using: &rng))
        let tcp = TCPRepr(sourcePort: rng.u16(), destinationPort: rng.u16(), sequenceNumber: rng.u32(),
                          acknowledgmentNumber: rng.u32(), flags: TCPFlags(rawValue: rng.byte()), window: rng.u16(),
                          options: rng.bytes(4 * Int.random(in: 0...3, using: &rng)), payloadLength: payload.count)
        let udp = UDPRepr(sourcePort: rng.u16(), destinationPort: rng.u16(), payloadLength: payload.count)
        let icmp = ICMPv4Repr(message: .echoRequest(identifier: rng.u16(), sequenceNumber: rng.u16()), payloadLength: payload.count)
        let l4Header: Int
        let proto: IPProtocol
        switch l4 {
        case .tcp: (l4Header, proto) = (tcp.headerLength, .tcp)
        case .udp, .udpNoChecksum: (l4Header, proto) = (8, .udp)
        case .icmp: (l4Header, proto) = (8, .icmp)
        }
        let ip = IPv4Repr(sourceAddress: rng.ipv4(), destinationAddress: rng.ipv4(), protocol: proto,
                          payloadLength: l4Header + payload.count, timeToLive: UInt8.random(in: 1...255, using: &rng),
                          identification: rng.u16(), dontFragment: rng.bool(), moreFragments: fragment,
                          dscp: UInt8.random(in: 0...63, using: &rng), options: rng.bytes(4 * Int.random(in: 0...2, using: &rng)))
        let eth = EthernetRepr(destination: rng.mac(), source: rng.mac(),
                               vlanTag: rng.bool() ? VLANTag(tci: rng.u16()) : nil, etherType: .ipv4)
        let l3 = eth.headerLength, l4Offset = l3 + ip.headerLength
        var frame = poisoned(l4Offset + l4Header) + payload
        frame.write { b in
            eth.emit(into: EthernetMutableHeader(unchecked: b))
            ip.emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[l3...])))
            let seg = UnsafeMutableRawBufferPointer(rebasing: b[l4Offset...])
            let pseudo = IPPseudoHeader.ipv4(source: ip.sourceAddress, destination: ip.destinationAddress)
            switch l4 {
            case .tcp: tcp.emit(into: TCPMutableHeader(unchecked: seg), pseudoHeader: pseudo)
            case .udp: udp.emit(into: UDPMutableHeader(unchecked: seg), pseudoHeader: pseudo)
            case .udpNoChecksum: udp.emit(into: UDPMutableHeader(unchecked: seg), pseudoHeader: nil)
            case .icmp: icmp.emit(into: ICMPv4MutableHeader(unchecked: seg))
            }
        }
        return frame
    }

    /// The IPv4 header and L4 checksums recomputed from scratch, and the ones in the frame.
    func checksums(_ frame: [UInt8], _ p: ParsedFrame) -> (ip: UInt16, ipFull: UInt16, l4: UInt16, l4Full: UInt16) {
        frame.read { b in
            let ip = IPv4Header(unchecked: UnsafeRawBufferPointer(rebasing: b[p.l3Offset...]))
            let seg = ip.payload
            switch p.protocol {
            case .tcp:
                let t = TCPHeader(unchecked: seg)
                return (ip.headerChecksum, ip.computedChecksum, t.checksum, t.computedChecksum(pseudoHeader: ip.pseudoHeader))
            case .udp:
                let u = UDPHeader(unchecked: seg)
                return (ip.headerChecksum, ip.computedChecksum, u.checksum,
                        u.checksum == 0 ? 0 : u.computedChecksum(pseudoHeader: ip.pseudoHeader))
            default:
                let i = ICMPv4Header(unchecked: seg)
                return (ip.headerChecksum, ip.computedChecksum, i.checksum, i.computedChecksum)
            }
        }
    }

    @Test(arguments: L4.allCases)
    func incrementalEqualsFullRecomputation(l4: L4) throws {
        var rng = SplitMix64(seed: 1624 &+ UInt64(L4.allCases.firstIndex(of: l4)!))
        for _ in 0..<1500 {
            var frame = randomIPv4Frame(&rng, l4: l4)
            var p = try frame.read { try FrameParser().parse($0) }
            let start = checksums(frame, p)
            #expect(start.ip == start.ipFull && start.l4 == start.l4Full)
            for _ in 0..<6 {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0 where p.timeToLive > 0: frame.write { _ = p.decrementTimeToLive(in: $0) }
                case 1: let a = rng.ipv4(); frame.write { p.rewriteIPv4Source(a, in: $0) }
                case 2: let a = rng.ipv4(); frame.write { p.rewriteIPv4Destination(a, in: $0) }
                case 3 where p.hasPorts: let port = rng.u16(); frame.write { p.rewriteSourcePort(port, in: $0) }
                case 4 where p.hasPorts: let port = rng.u16(); frame.write { p.rewriteDestinationPort(port, in: $0) }
                case 5 where l4 == .icmp: let id = rng.u16(); frame.write { p.rewriteICMPIdentifier(id, in: $0) }
                default: let m = rng.mac(); frame.write { p.rewriteDestinationMAC(m, in: $0) }
                }
                let c = checksums(frame, p)
                #expect(c.ip == c.ipFull, "IPv4 header checksum")
                #expect(c.l4 == c.l4Full, "\(l4) checksum")
                if l4 == .udpNoChecksum { #expect(c.l4 == 0, "UDP checksum 0 must stay 0") }
                // The ParsedFrame still describes the frame.
                #expect(try frame.read { try FrameParser().parse($0) } == p)
            }
        }
    }

    /// A first fragment's L4 checksum covers the whole datagram: rewriting
    /// the addresses and ports of the first fragment must change it exactly
    /// as on the unfragmented datagram. A non-first fragment has no L4 header
    /// and its bytes after the IP header must not change.
    @Test func fragments() throws {
        var rng = SplitMix64(seed: 815)
        for _ in 0..<1000 {
            let l4: L4 = rng.bool() ? .tcp : .udp
            var whole = randomIPv4Frame(&rng, l4: l4)
            var first = whole
            first.write { b in
                let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[(b[12] == 0x81 ? 18 : 14)...]))
                ip.moreFragments = true
                ip.fillChecksum()
            }
            var pw = try whole.read { try FrameParser().parse($0) }
            var pf = try first.read { try FrameParser().parse($0) }
            #expect(pf.isFragment && pf.hasTransportHeader)
            let src = rng.ipv4(), dst = rng.ipv4(), sport = rng.u16(), dport = rng.u16()
            whole.write { pw.rewriteIPv4Source(src, in: $0); pw.rewriteIPv4Destination(dst, in: $0)
                pw.rewriteSourcePort(sport, in: $0); pw.rewriteDestinationPort(dport, in: $0) }
            first.write { pf.rewriteIPv4Source(src, in: $0); pf.rewriteIPv4Destination(dst, in: $0)
                pf.rewriteSourcePort(sport, in: $0); pf.rewriteDestinationPort(dport, in: $0) }
            #expect(checksums(first, pf).l4 == checksums(whole, pw).l4Full)
            #expect(checksums(first, pf).ip == checksums(first, pf).ipFull)

            // Non-first fragment: offset 8, no L4 header; only the IP header changes.
            var later = whole
            later.write { b in
                let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[(b[12] == 0x81 ? 18 : 14)...]))
                ip.fragmentOffset = 8
                ip.fillChecksum()
            }
            var pl = try later.read { try FrameParser().parse($0) }
            #expect(!pl.hasTransportHeader)
            let before = Array(later[pl.l4Offset...])
            later.write { pl.rewriteIPv4Source(src, in: $0); pl.rewriteIPv4Destination(dst, in: $0); _ = pl.decrementTimeToLive(in: $0) }
            #expect(Array(later[pl.l4Offset...]) == before)
            #expect(checksums(later, pl).ip == checksums(later, pl).ipFull)
        }
    }

    /// The one-step NAT helpers write the same bytes as the two-step ones.
    @Test func oneStepNATEqualsTwoSteps() throws {
        var rng = SplitMix64(seed: 1631)
        for round in 0..<2000 {
            let l4: L4 = [.tcp, .udp, .udpNoChecksum][round % 3]
            let frame = randomIPv4Frame(&rng, l4: l4)
            let address = rng.ipv4(), port = rng.u16()
            var one = frame, two = frame
            var p1 = try one.read { try FrameParser().parse($0) }
            var p2 = p1
            if rng.bool() {
                one.write { p1.rewriteIPv4Destination(address, port: port, in: $0) }
                two.write { p2.rewriteIPv4Destination(address, in: $0); p2.rewriteDestinationPort(port, in: $0) }
            } else {
                one.write { p1.rewriteIPv4Source(address, port: port, in: $0) }
                two.write { p2.rewriteIPv4Source(address, in: $0); p2.rewriteSourcePort(port, in: $0) }
            }
            #expect(one == two)
            #expect(p1 == p2)
            let c = checksums(one, p1)
            #expect(c.ip == c.ipFull && c.l4 == c.l4Full)
        }
    }

    @Test func ipv6AddressRewrites() throws {
        var rng = SplitMix64(seed: 2460)
        for fixture in [Fixture.ipv6Tcp, Fixture.ipv6ExtUdp, Fixture.icmpv6Echo, Fixture.icmpv6Na] {
            var frame = fixture
            var p = try frame.read { try FrameParser().parse($0) }
            for _ in 0..<300 {
                let a = rng.ipv6()
                if rng.bool() { frame.write { p.rewriteIPv6Source(a, in: $0) } } else { frame.write { p.rewriteIPv6Destination(a, in: $0) } }
                if p.hasPorts, rng.bool() { let port = rng.u16(); frame.write { p.rewriteDestinationPort(port, in: $0) } }
                if rng.bool() { frame.write { _ = p.decrementTimeToLive(in: $0) } ; if p.timeToLive == 0 { frame[21] = 64; p.timeToLive = 64 } }
                frame.read { b in
                    let ip = IPv6Header(unchecked: UnsafeRawBufferPointer(rebasing: b[14...]))
                    let seg = UnsafeRawBufferPointer(rebasing: b[p.l4Offset..<(14 + 40 + ip.payloadLength)])
                    switch p.protocol {
                    case .tcp: #expect(TCPHeader(unchecked: seg).isChecksumValid(pseudoHeader: ip.pseudoHeader))
                    case .udp:
                        // ipv6ExtUdp is a (first) fragment of its own datagram: compare with full recomputation.
                        let u = UDPHeader(unchecked: seg)
                        #expect(u.checksum == u.computedChecksum(pseudoHeader: ip.pseudoHeader))
                    default:
                        let i = ICMPv6Header(unchecked: seg)
                        #expect(i.checksum == i.computedChecksum(source: ip.sourceAddress, destination: ip.destinationAddress))
                    }
                }
            }
        }
    }

    @Test func macRewritesTouchOnlyMACs() throws {
        var frame = Fixture.tcpSyn
        var p = try frame.read { try FrameParser().parse($0) }
        frame.write { p.rewriteDestinationMAC(MACAddress(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff), in: $0)
            p.rewriteSourceMAC(.broadcast, in: $0) }
        #expect(Array(frame[0..<12]) == bytes(hex: "aabbccddeeff ffffffffffff"))
        #expect(Array(frame[12...]) == Array(Fixture.tcpSyn[12...]))
        #expect(p.destinationMAC == MACAddress(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff) && p.sourceMAC == .broadcast)
    }

    @Test func ttlDecrementToZero() throws {
        var frame = ipv4TTL(1)
        var p = try frame.read { try FrameParser().parse($0) }
        #expect(frame.write { p.decrementTimeToLive(in: $0) } == 0)
        #expect(try frame.read { try FrameParser().parse($0) }.timeToLive == 0)  // checksum still valid
    }

    func ipv4TTL(_ ttl: UInt8) -> [UInt8] {
        var f = Fixture.tcpSyn
        f.write(14..<74) { b in let h = IPv4MutableHeader(unchecked: b); h.timeToLive = ttl; h.fillChecksum() }
        return f
    }
}
