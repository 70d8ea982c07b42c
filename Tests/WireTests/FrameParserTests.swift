import Testing
import Wire

@Suite struct FrameParserTests {
    func parse(_ frame: [UInt8], _ parser: FrameParser = FrameParser()) throws -> ParsedFrame {
        try frame.read { try parser.parse($0) }
    }

    func reason(_ frame: [UInt8], _ parser: FrameParser = FrameParser()) -> WireError? {
        wireError(frame) { _ = try parser.parse($0) }
    }

    @Test func tcpSyn() throws {
        let p = try parse(Fixture.tcpSyn)
        #expect(p.frameLength == 74)
        #expect(p.destinationMAC == MACAddress(2, 0, 0, 0, 0, 2) && p.sourceMAC == MACAddress(2, 0, 0, 0, 0, 1))
        #expect(!p.hasVLANTag && p.vlanIdentifier == nil)
        #expect(p.etherType == .ipv4 && p.l3Offset == 14)
        #expect(p.ipVersion == 4 && p.isIPv4 && p.ipHeaderLength == 20 && p.ipLength == 60)
        #expect(p.protocol == .tcp && p.isTCP && p.hasPorts)
        #expect(p.sourceIPv4 == IPv4Address(10, 0, 0, 1) && p.destinationIPv4 == IPv4Address(10, 0, 0, 100))
        #expect(p.timeToLive == 64)
        #expect(!p.isFragment && p.fragmentOffset == 0)
        #expect(p.l4Offset == 34 && p.l4Length == 40 && p.hasTransportHeader)
        #expect(p.sourcePort == 40000 && p.destinationPort == 80)
        #expect(p.tcpFlags == .syn)
        #expect(try Fixture.tcpSyn.read { try ParsedFrame(parsing: $0) } == p)
    }

    @Test func paddingIsNotPayload() throws {
        let p = try parse(Fixture.tcpSyn + [0, 0, 0, 0, 0, 0])
        #expect(p.frameLength == 80 && p.ipLength == 60 && p.l4Length == 40)
    }

    @Test func icmpEcho() throws {
        let p = try parse(Fixture.icmpEcho)
        #expect(p.protocol == .icmp && p.hasTransportHeader && !p.hasPorts)
        #expect(p.icmpType == ICMPv4Type.echoRequest.rawValue && p.icmpCode == 0 && p.icmpIdentifier == 0x1234)
        let e = try parse(Fixture.icmpFragNeeded)
        #expect(e.icmpType == 3 && e.icmpCode == 4 && e.timeToLive == 255)
    }

    @Test func udpAndVLAN() throws {
        let dns = try parse(Fixture.udpDns)
        #expect(dns.isUDP && dns.sourcePort == 53000 && dns.destinationPort == 53)
        let tagged = try parse(Fixture.vlanUdp)
        #expect(tagged.hasVLANTag && tagged.vlanIdentifier == 100 && tagged.vlanTag?.priority == 3)
        #expect(tagged.etherType == .ipv4 && tagged.l3Offset == 18 && tagged.l4Offset == 38)
        #expect(tagged.timeToLive == 17 && tagged.sourcePort == 1234 && tagged.destinationPort == 5678)
    }

    @Test func ipv4Options() throws {
        let p = try parse(Fixture.ipv4Options)
        #expect(p.ipHeaderLength == 32 && p.l4Offset == 46 && p.sourcePort == 7 && p.destinationPort == 7)
    }

    @Test func fragments() throws {
        let first = try parse(Fixture.fragFirst)
        #expect(first.isFragment && first.fragmentOffset == 0)
        #expect(first.hasTransportHeader && first.sourcePort == 5000 && first.destinationPort == 6000)
        let second = try parse(Fixture.fragSecond)
        #expect(second.isFragment && second.fragmentOffset == 40)
        #expect(!second.hasTransportHeader && !second.hasPorts && second.sourcePort == 0)
        #expect(second.protocol == .udp && second.l4Offset == 34 && second.l4Length == 24)
    }

    @Test func arp() throws {
        let p = try parse(Fixture.arpRequest)
        #expect(p.etherType == .arp && p.arpOperation == .request && p.ipVersion == 0 && !p.hasTransportHeader)
    }

    @Test func ipv6() throws {
        let ns = try parse(Fixture.icmpv6Ns)
        #expect(ns.isIPv6 && ns.protocol == .icmpv6 && ns.icmpType == 135 && ns.timeToLive == 255)
        #expect(ns.sourceIPv6 == IPv6Address("fe80::1") && ns.destinationIPv6 == IPv6Address("ff02::1:ff00:2"))
        #expect(ns.l4Offset == 54 && ns.l4Length == 32)
        let tcp = try parse(Fixture.ipv6Tcp)
        #expect(tcp.isTCP && tcp.sourcePort == 443 && tcp.destinationPort == 50000 && tcp.tcpFlags == [.syn, .ack])
        let ext = try parse(Fixture.ipv6ExtUdp)
        #expect(ext.protocol == .udp && ext.l4Offset == 78 && ext.sourcePort == 1111 && ext.destinationPort == 2222)
        #expect(ext.isFragment && ext.fragmentOffset == 0 && ext.ipLength == 83)
        let second = try parse(Fixture.ipv6FragSecond)
        #expect(second.isFragment && second.fragmentOffset == 1000 && !second.hasTransportHeader)
    }

    @Test func ipipIsNotLookedInto() throws {
        let p = try parse(Fixture.ipip)
        #expect(p.protocol == .ipip && !p.hasTransportHeader && p.l4Offset == 34 && p.l4Length == 40)
    }

    /// Applies `change` to the IPv4 header of `frame` (at 14) and refreshes its checksum.
    func ipv4(_ frame: [UInt8], _ change: (IPv4MutableHeader) -> Void) -> [UInt8] {
        var f = frame
        f.write(14..<f.count) { b in
            let h = IPv4MutableHeader(unchecked: b)
            change(h)
            h.fillChecksum()
        }
        return f
    }

    @Test func malformedFramesGiveTheirReason() {
        let syn = Fixture.tcpSyn
        var qinq = Fixture.vlanUdp; qinq[12] = 0x88; qinq[13] = 0xA8
        var badSum = syn; badSum[24] ^= 0x40
        var arpType = Fixture.arpRequest; arpType[15] = 6
        var v6Ext = Fixture.ipv6ExtUdp; v6Ext[55] = 9     // hop-by-hop length 80 bytes, past the payload
        var v6Version = Fixture.ipv6Tcp; v6Version[14] = 0x70
        let cases: [(String, [UInt8], WireError)] = [
            ("short Ethernet", Array(syn[0..<13]), .truncated),
            ("tag cut off", Array(Fixture.vlanUdp[0..<17]), .truncated),
            ("802.1ad", qinq, .unsupported),
            ("IPv4 under 20 bytes", Array(syn[0..<33]), .truncated),
            ("IPv4 version 5", ipv4(syn) { $0.version = 5 }, .badVersion),
            ("IHL 4", ipv4(syn) { _ in } .enumerated().map { $0.offset == 14 ? 0x44 : $0.element }, .badHeaderLength),
            ("IHL past the frame", Array(ipv4(syn) { $0.headerLength = 60; $0.totalLength = 60 }[0..<70]), .badHeaderLength),
            ("bad header checksum", badSum, .badChecksum),
            ("total length past the frame", ipv4(syn) { $0.totalLength = 61 }, .badLength),
            ("total length under the header", ipv4(syn) { $0.totalLength = 19 }, .badLength),
            ("TCP cut by total length", ipv4(syn) { $0.totalLength = 30 }, .truncated),
            ("TCP data offset 4", { var f = syn; f[46] = 0x40; return f }(), .badHeaderLength),
            ("TCP options past the segment", ipv4(syn) { $0.totalLength = 50 }, .badHeaderLength),
            ("UDP length past the datagram", { var f = Fixture.udpDns; f[39] = 0x30; return f }(), .badLength),
            ("UDP length under 8", { var f = Fixture.udpDns; f[39] = 0x07; return f }(), .badLength),
            ("UDP cut by total length", ipv4(Fixture.udpDns) { $0.totalLength = 27 }, .truncated),
            ("ICMP under 8 bytes", ipv4(Fixture.icmpEcho) { $0.totalLength = 27 }, .truncated),
            ("ARP cut off", Array(Fixture.arpRequest[0..<41]), .truncated),
            ("ARP not Ethernet/IPv4", arpType, .unsupported),
            ("IPv6 under 40 bytes", Array(Fixture.ipv6Tcp[0..<53]), .truncated),
            ("IPv6 version 7", v6Version, .badVersion),
            ("IPv6 payload length past the frame", Array(Fixture.ipv6Tcp[0..<73]), .badLength),
            ("IPv6 extension header past the payload", v6Ext, .badHeaderLength),
        ]
        for (name, frame, expected) in cases {
            #expect(reason(frame) == expected, "\(name)")
        }
        // The checksum check can be turned off.
        #expect(reason(badSum, FrameParser(verifiesIPv4Checksum: false)) == nil)
        #expect(WireError.badChecksum.reason == "bad-checksum")
        #expect(Set(WireError.allCases.map(\.reason)).count == WireError.allCases.count)
    }

    /// Random bytes and random single-byte corruptions of every fixture must
    /// never trap (debug builds bounds-check every access), only succeed or throw.
    @Test func fuzzNeverTraps() {
        var rng = SplitMix64(seed: 0xF022)
        let fixtures = [Fixture.icmpEcho, Fixture.arpRequest, Fixture.tcpSyn, Fixture.udpDns, Fixture.vlanUdp,
                        Fixture.ipv4Options, Fixture.icmpFragNeeded, Fixture.fragFirst, Fixture.fragSecond,
                        Fixture.icmpv6Ns, Fixture.icmpv6Na, Fixture.icmpv6Echo, Fixture.ipv6ExtUdp,
                        Fixture.ipv6FragSecond, Fixture.ipv6Tcp, Fixture.ipip]
        var parsed = 0
        for round in 0..<20_000 {
            var frame = fixtures[round % fixtures.count]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                frame[Int.random(in: 0..<frame.count, using: &rng)] = rng.byte()
            }
            if rng.bool() { frame.removeLast(Int.random(in: 0..<frame.count, using: &rng)) }
            let parser = FrameParser(verifiesIPv4Checksum: rng.bool())
            if let p = try? frame.read(0..<frame.count, { try parser.parse($0) }) {
                parsed += 1
                // Everything the result points at is inside the frame.
                #expect(p.l3Offset <= p.frameLength)
                if p.ipVersion != 0 { #expect(p.l4Offset + p.l4Length <= p.frameLength) }
            }
            // The per-protocol views, on the same bytes.
            frame.read(min(14, frame.count)..<frame.count) { b in
                if let ip = try? IPv4Header(validating: b) {
                    _ = (ip.options.count, ip.payload.count, ip.isChecksumValid)
                    _ = try? IPIP.decapsulate(b)
                    if let t = try? TCPHeader(validating: ip.payload) { _ = (t.options.count, t.payload.count) }
                    if let u = try? UDPHeader(validating: ip.payload) { _ = u.payload.count }
                    if let i = try? ICMPv4Header(validating: ip.payload) { _ = ICMPv4Repr(parsing: i) }
                }
                if let ip = try? IPv6Header(validating: b), let upper = try? ip.upperLayer() {
                    #expect(upper.offset <= upper.end && upper.end <= b.count)
                    let rest = UnsafeRawBufferPointer(rebasing: b[upper.offset..<upper.end])
                    if let i = try? ICMPv6Header(validating: rest) { _ = (ICMPv6Repr(parsing: i), i.options.count) }
                }
                if let a = try? ARPHeader(validating: b) { _ = ARPRepr(parsing: a) }
            }
        }
        #expect(parsed > 1000)
    }
}
