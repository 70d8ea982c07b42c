import Testing
import Wire

@Suite struct ICMPv6Tests {
    let a = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    let b = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    let ll1 = IPv6Address("fe80::1")!
    let ll2 = IPv6Address("fe80::2")!
    let solicited = IPv6Address("ff02::1:ff00:2")!

    // Fixture.icmpv6Ns from offset 54: neighbor solicitation, who has fe80::2,
    // source link-address option (1), length 8 (1): 02:00:00:00:00:01
    // 0x0030:  .... .... .... 8700 7a97 0000 0000 fe80
    // 0x0040:  0000 0000 0000 0000 0000 0000 0002 0101
    // 0x0050:  0200 0000 0001
    @Test func deconstructNeighborSolicitation() throws {
        try Fixture.icmpv6Ns.read(54..<86) { buf in
            let icmp = try ICMPv6Header(validating: buf)
            #expect(icmp.type == .neighborSolicitation)
            #expect(icmp.code == 0)
            #expect(icmp.checksum == 0x7a97)
            #expect(icmp.isChecksumValid(source: ll1, destination: solicited))
            #expect(icmp.targetAddress == ll2)
            #expect(icmp.sourceLinkLayerAddress == a)
            #expect(icmp.targetLinkLayerAddress == nil)
            #expect(icmp.options.count == 8)
        }
    }

    // Fixture.icmpv6Na from offset 54: neighbor advertisement, tgt is fe80::2, Flags [solicited, override]
    // 0x0030:  .... .... .... 8800 181a 6000 0000 fe80
    @Test func deconstructNeighborAdvertisement() throws {
        try Fixture.icmpv6Na.read(54..<86) { buf in
            let icmp = try ICMPv6Header(validating: buf)
            #expect(icmp.type == .neighborAdvertisement)
            #expect(icmp.neighborAdvertisementFlags == [.solicited, .override])
            #expect(icmp.targetAddress == ll2)
            #expect(icmp.targetLinkLayerAddress == b)
            #expect(icmp.sourceLinkLayerAddress == nil)
            #expect(icmp.isChecksumValid(source: ll2, destination: ll1))
        }
    }

    // Fixture.icmpv6Echo from offset 54: echo request, id 119, seq 3, data "ping6data"
    @Test func deconstructEcho() throws {
        try Fixture.icmpv6Echo.read(54..<71) { buf in
            let icmp = try ICMPv6Header(validating: buf)
            #expect(icmp.type == .echoRequest)
            #expect(icmp.identifier == 119 && icmp.sequenceNumber == 3)
            #expect(icmp.targetAddress == nil)
            #expect(Array(icmp.payload) == Array("ping6data".utf8))
            #expect(icmp.isChecksumValid(source: IPv6Address("2001:db8::1")!, destination: IPv6Address("2001:db8::2")!))
        }
    }

    @Test func construct() {
        var out = poisoned(32)
        out.write { buf in
            let icmp = ICMPv6MutableHeader(unchecked: buf)
            icmp.type = .neighborAdvertisement
            icmp.code = 0
            icmp.restOfHeader = 0
            icmp.neighborAdvertisementFlags = [.solicited, .override]
            icmp.setTargetAddress(ll2)
            for (i, byte) in [UInt8(2), 1, 0x02, 0, 0, 0, 0, 0x02].enumerated() { buf[24 + i] = byte }
            icmp.fillChecksum(source: ll2, destination: ll1)
        }
        #expect(out == Array(Fixture.icmpv6Na[54..<86]))
    }

    var nsRepr: ICMPv6Repr { ICMPv6Repr(message: .neighborSolicitation(targetAddress: ll2, sourceLinkLayerAddress: a)) }
    var naRepr: ICMPv6Repr {
        ICMPv6Repr(message: .neighborAdvertisement(flags: [.solicited, .override], targetAddress: ll2, targetLinkLayerAddress: b))
    }
    var echoRepr: ICMPv6Repr { ICMPv6Repr(message: .echoRequest(identifier: 119, sequenceNumber: 3), payloadLength: 9) }

    @Test func parse() throws {
        #expect(try Fixture.icmpv6Ns.read(54..<86) { ICMPv6Repr(parsing: try ICMPv6Header(validating: $0)) } == nsRepr)
        #expect(try Fixture.icmpv6Na.read(54..<86) { ICMPv6Repr(parsing: try ICMPv6Header(validating: $0)) } == naRepr)
        #expect(try Fixture.icmpv6Echo.read(54..<71) { ICMPv6Repr(parsing: try ICMPv6Header(validating: $0)) } == echoRepr)
        #expect(nsRepr.headerLength == 32 && nsRepr.bufferLength == 32)
    }

    @Test func emit() {
        var ns = poisoned(32)
        ns.write { nsRepr.emit(into: ICMPv6MutableHeader(unchecked: $0), source: ll1, destination: solicited) }
        #expect(ns == Array(Fixture.icmpv6Ns[54..<86]))
        var na = poisoned(32)
        na.write { naRepr.emit(into: ICMPv6MutableHeader(unchecked: $0), source: ll2, destination: ll1) }
        #expect(na == Array(Fixture.icmpv6Na[54..<86]))
        var echo = poisoned(8) + Array("ping6data".utf8)
        echo.write { echoRepr.emit(into: ICMPv6MutableHeader(unchecked: $0), source: IPv6Address("2001:db8::1")!,
                                   destination: IPv6Address("2001:db8::2")!) }
        #expect(echo == Array(Fixture.icmpv6Echo[54..<71]))
    }

    @Test func negative() {
        let ns = Array(Fixture.icmpv6Ns[54..<86])
        func check(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try ICMPv6Header(validating: $0) } }
        #expect(check(ns) == nil)
        #expect(check(Array(ns[0..<7])) == .truncated)
        #expect(check(Array(ns[0..<23])) == .truncated)          // NS needs its 24-byte fixed part
        #expect(check(Array(ns[0..<24])) == nil)                 // no options is fine
        #expect(check(Array(ns[0..<25])) == .truncated)          // an option without its length byte
        #expect(check(Array(ns[0..<31])) == .badLength)          // option runs past the message
        var zero = ns; zero[25] = 0                              // RFC 4861: length 0 must be discarded
        #expect(check(zero) == .badLength)
        // Echo has no options: any length ≥ 8 is fine.
        #expect(check(Array(Fixture.icmpv6Echo[54..<62])) == nil)
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 4443)
        for _ in 0..<3000 {
            let maybeMAC: MACAddress? = rng.bool() ? rng.mac() : nil
            let message: ICMPv6Message
            switch Int.random(in: 0..<9, using: &rng) {
            case 0: message = .echoRequest(identifier: rng.u16(), sequenceNumber: rng.u16())
            case 1: message = .echoReply(identifier: rng.u16(), sequenceNumber: rng.u16())
            case 2: message = .destinationUnreachable(code: UInt8.random(in: 0...7, using: &rng))
            case 3: message = .packetTooBig(mtu: rng.u32())
            case 4: message = .timeExceeded(code: UInt8.random(in: 0...1, using: &rng))
            case 5: message = .parameterProblem(code: UInt8.random(in: 0...3, using: &rng), pointer: rng.u32())
            case 6: message = .neighborSolicitation(targetAddress: rng.ipv6(), sourceLinkLayerAddress: maybeMAC)
            case 7: message = .neighborAdvertisement(flags: NeighborAdvertisementFlags(rawValue: rng.byte() & 0xE0),
                                                     targetAddress: rng.ipv6(), targetLinkLayerAddress: maybeMAC)
            default:
                var type = rng.byte()
                if (1...4).contains(type) || (128...137).contains(type) { type = 200 }
                message = .other(type: ICMPv6Type(type), code: rng.byte(), restOfHeader: rng.u32())
            }
            var repr = ICMPv6Repr(message: message, payloadLength: Int.random(in: 0...40, using: &rng))
            if case .neighborSolicitation = message { repr.payloadLength = 0 }
            if case .neighborAdvertisement = message { repr.payloadLength = 0 }
            let src = rng.ipv6(), dst = rng.ipv6()
            var buf = poisoned(repr.headerLength) + rng.bytes(repr.payloadLength)
            buf.write { repr.emit(into: ICMPv6MutableHeader(unchecked: $0), source: src, destination: dst) }
            let back: ICMPv6Repr? = buf.read { b in
                guard let h = try? ICMPv6Header(validating: b), h.isChecksumValid(source: src, destination: dst) else { return nil }
                return ICMPv6Repr(parsing: h)
            }
            #expect(back == repr)
        }
    }

    @Test func typeIsOpen() {
        #expect(ICMPv6Type(rawValue: 250).rawValue == 250)
        #expect(ICMPv6Type(250).description == "icmpv6-type-250")
        #expect(ICMPv6Type.packetTooBig.isError && !ICMPv6Type.echoRequest.isError)
    }
}
