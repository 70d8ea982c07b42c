import Testing
import Wire

@Suite struct IPv6Tests {
    let s = IPv6Address("2001:db8::1")!
    let d = IPv6Address("2001:db8::2")!

    // Fixture.icmpv6Echo from offset 14:
    // 0x0000:  .... .... .... .... .... .... 86dd 6201
    // 0x0010:  2345 0011 3a40 2001 0db8 0000 0000 0000
    // 0x0020:  0000 0000 0001 2001 0db8 0000 0000 0000
    // 0x0030:  0000 0000 0002 ...
    // (class 0x20, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58) payload length: 17)
    @Test func deconstruct() throws {
        try Fixture.icmpv6Echo.read(14..<71) { buf in
            let ip = try IPv6Header(validating: buf)
            #expect(ip.version == 6)
            #expect(ip.trafficClass == 0x20)
            #expect(ip.flowLabel == 0x12345)
            #expect(ip.payloadLength == 17)
            #expect(ip.nextHeader == .icmpv6)
            #expect(ip.hopLimit == 64)
            #expect(ip.sourceAddress == s)
            #expect(ip.destinationAddress == d)
            #expect(ip.payload.count == 17 && ip.payload.first == 0x80)
        }
    }

    var echoRepr: IPv6Repr {
        IPv6Repr(sourceAddress: s, destinationAddress: d, nextHeader: .icmpv6, payloadLength: 17, hopLimit: 64,
                 trafficClass: 0x20, flowLabel: 0x12345)
    }

    @Test func construct() {
        var out = poisoned(40)
        out.write { buf in
            let ip = IPv6MutableHeader(unchecked: buf)
            ip.version = 6
            ip.trafficClass = 0x20
            ip.flowLabel = 0x12345
            ip.payloadLength = 17
            ip.nextHeader = .icmpv6
            ip.hopLimit = 64
            ip.sourceAddress = s
            ip.destinationAddress = d
        }
        #expect(out == Array(Fixture.icmpv6Echo[14..<54]))
    }

    @Test func parse() throws {
        let repr = try Fixture.icmpv6Echo.read(14..<71) { IPv6Repr(parsing: try IPv6Header(validating: $0)) }
        #expect(repr == echoRepr)
        #expect(repr.bufferLength == 57)
    }

    @Test func emit() {
        var out = poisoned(40)
        out.write { echoRepr.emit(into: IPv6MutableHeader(unchecked: $0)) }
        #expect(out == Array(Fixture.icmpv6Echo[14..<54]))
    }

    @Test func negative() {
        let good = Array(Fixture.icmpv6Echo[14..<71])
        func check(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try IPv6Header(validating: $0) } }
        #expect(check(good) == nil)
        #expect(check(Array(good[0..<39])) == .truncated)
        var v4 = good; v4[0] = 0x45
        #expect(check(v4) == .badVersion)
        #expect(check(Array(good[0..<56])) == .badLength)   // payload length 17 past the buffer
        var hop = good
        hop.write { _ = IPv6MutableHeader(unchecked: $0).decrementHopLimit() }
        #expect(hop[7] == 63)
    }

    // Fixture.ipv6ExtUdp: HBH (padn) DSTOPT (padn) frag (0xdeadbeef:0|19) 1111 > 2222: UDP
    // 0x0030:  0000 0000 0002 3c00 0104 0000 0000 2c00
    // 0x0040:  0104 0000 0000 1100 0001 dead beef 0457
    @Test func extensionHeaderWalk() throws {
        let upper = try Fixture.ipv6ExtUdp.read(14..<97) { try IPv6Header(validating: $0).upperLayer() }
        #expect(upper == IPv6UpperLayer(protocol: .udp, offset: 64, end: 83, isFragment: true, fragmentOffset: 0,
                                        moreFragments: true, fragmentIdentification: 0xdead_beef))
        #expect(upper.hasUpperLayerHeader)
        // frag (0xdeadbeef:1000|16): a non-first fragment stops the walk.
        let second = try Fixture.ipv6FragSecond.read(14..<78) { try IPv6Header(validating: $0).upperLayer() }
        #expect(second.protocol == .udp && second.offset == 48 && second.fragmentOffset == 1000)
        #expect(second.isFragment && !second.moreFragments && !second.hasUpperLayerHeader)
        // No extension headers.
        let plain = try Fixture.ipv6Tcp.read(14..<74) { try IPv6Header(validating: $0).upperLayer() }
        #expect(plain == IPv6UpperLayer(protocol: .tcp, offset: 40, end: 60))
    }

    /// An IPv6 packet with `chain` extension headers of 8 bytes each (all
    /// destination options) then `last` as the upper layer, payload `extra` bytes.
    func packet(chain: Int, last: UInt8 = 59, extra: Int = 0) -> [UInt8] {
        var ext: [UInt8] = []
        for i in 0..<chain { ext += [i == chain - 1 ? last : 60, 0, 1, 4, 0, 0, 0, 0] }
        let payload = ext + [UInt8](repeating: 0, count: extra)
        var out = poisoned(40 + payload.count)
        out.write { IPv6Repr(sourceAddress: s, destinationAddress: d, nextHeader: chain == 0 ? IPProtocol(last) : .destinationOptions,
                             payloadLength: payload.count).emit(into: IPv6MutableHeader(unchecked: $0)) }
        out.replaceSubrange(40..., with: payload)
        return out
    }

    @Test func extensionHeaderWalkIsBounded() throws {
        func walk(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try IPv6Header(validating: $0).upperLayer() } }
        #expect(walk(packet(chain: 8)) == nil)
        #expect(try packet(chain: 8).read { try IPv6Header(validating: $0).upperLayer() }.protocol == .none)
        #expect(walk(packet(chain: 9)) == .unsupported)
        // Header length past the payload.
        var long = packet(chain: 1, last: 17)
        long[41] = 1   // 16 bytes, only 8 present
        #expect(walk(long) == .badHeaderLength)
        // Next header says "destination options" but the payload ends.
        let cut = packet(chain: 0, last: 60)
        #expect(walk(cut) == .truncated)
        // A fragment header that does not fit.
        var frag = packet(chain: 0, last: 44, extra: 4)
        frag[6] = 44
        #expect(walk(frag) == .truncated)
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 8200)
        for _ in 0..<2000 {
            let repr = IPv6Repr(sourceAddress: rng.ipv6(), destinationAddress: rng.ipv6(), nextHeader: IPProtocol(rng.byte()),
                                payloadLength: Int.random(in: 0...64, using: &rng), hopLimit: rng.byte(),
                                trafficClass: rng.byte(), flowLabel: rng.u32() & 0xFFFFF)
            var buf = poisoned(repr.bufferLength)
            buf.write { repr.emit(into: IPv6MutableHeader(unchecked: $0)) }
            #expect(buf.read { b in (try? IPv6Header(validating: b)).map(IPv6Repr.init(parsing:)) } == repr)
        }
    }
}

@Suite struct IPv6AddressTests {
    @Test func rfc5952Text() throws {
        let cases: [(String, String)] = [
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("fe80::", "fe80::"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // first of equal runs
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),       // a single 0 is not compressed
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                // the longest run wins
            ("ff02::1:ff00:2", "ff02::1:ff00:2"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::ffff:a00:1", "::ffff:10.0.0.1"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1::2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ]
        for (text, canonical) in cases {
            let address = try #require(IPv6Address(text), "\(text)")
            #expect(address.description == canonical, "\(text)")
            #expect(IPv6Address(canonical) == address)
        }
    }

    @Test func rejects() {
        for bad in ["", ":", ":::", "1:::2", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                    "::1%eth0", "1:2:3:4:5:6:7::8", "::ffff:10.0.0", "::ffff:10.0.0.256", "10.0.0.1::", " ::1",
                    "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8"] {
            #expect(IPv6Address(bad) == nil, "\(bad) should not parse")
        }
    }

    @Test func bytesAndProperties() throws {
        let a = try #require(IPv6Address("fe80::1:2"))
        #expect(a[0] == 0xfe && a[1] == 0x80 && a[13] == 0x01 && a[15] == 0x02)
        #expect(a.group(0) == 0xfe80 && a.group(7) == 2)
        #expect(IPv6Address(bytes: a.bytes) == a)
        #expect(a.isLinkLocal && !a.isMulticast)
        #expect(IPv6Address("ff02::1")!.isMulticast)
        #expect(IPv6Address.loopback.isLoopback && IPv6Address.unspecified.isUnspecified)
        #expect(IPv6Address("2001:db8::abcd:1234")!.solicitedNodeMulticast == IPv6Address("ff02::1:ffcd:1234"))
        #expect(IPv6Address(ipv4Mapped: IPv4Address(1, 2, 3, 4)).ipv4Mapped == IPv4Address(1, 2, 3, 4))
        #expect(IPv6Address("::1")! < IPv6Address("::2")!)
    }

    @Test func randomRoundTrip() {
        var rng = SplitMix64(seed: 5952)
        for _ in 0..<3000 {
            // Bias toward zero groups so `::` placement is exercised.
            var groups = (0..<8).map { _ in rng.bool() ? UInt16(0) : rng.u16() }
            if rng.bool() { groups[Int.random(in: 0..<8, using: &rng)] = 0 }
            let a = IPv6Address(groups[0], groups[1], groups[2], groups[3], groups[4], groups[5], groups[6], groups[7])
            #expect(IPv6Address(a.description) == a, "\(a)")
        }
    }
}
