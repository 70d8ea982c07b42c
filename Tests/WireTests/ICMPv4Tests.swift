import Testing
import Wire

@Suite struct ICMPv4Tests {
    // Fixture.icmpEcho from offset 34: ICMP echo request, id 4660, seq 1, length 64
    // 0x0020:  .... 0800 2cf6 1234 0001 1011 1213 1415
    @Test func deconstructEcho() throws {
        try Fixture.icmpEcho.read(34..<98) { buf in
            let icmp = try ICMPv4Header(validating: buf)
            #expect(icmp.type == .echoRequest)
            #expect(icmp.code == 0)
            #expect(icmp.checksum == 0x2cf6)
            #expect(icmp.identifier == 0x1234)
            #expect(icmp.sequenceNumber == 1)
            #expect(icmp.isChecksumValid && icmp.computedChecksum == 0x2cf6)
            #expect(icmp.payload.count == 56 && icmp.payload.first == 0x10)
        }
    }

    // Fixture.icmpFragNeeded from offset 34: ICMP 10.9.9.9 unreachable - need to frag (mtu 1400)
    // 0x0020:  .... 0304 5987 0000 0578 4500 008c 0007
    @Test func deconstructFragmentationNeeded() throws {
        try Fixture.icmpFragNeeded.read(34..<70) { buf in
            let icmp = try ICMPv4Header(validating: buf)
            #expect(icmp.type == .destinationUnreachable)
            #expect(icmp.code == ICMPv4Code.fragmentationNeeded)
            #expect(icmp.nextHopMTU == 1400)
            #expect(icmp.isChecksumValid)
            // The quoted datagram: its IP header and the first 8 bytes of TCP.
            #expect(icmp.payload.count == 28)
            let quoted = IPv4Header(unchecked: icmp.payload)
            #expect(quoted.sourceAddress == IPv4Address(10, 0, 0, 1))
            #expect(quoted.destinationAddress == IPv4Address(10, 9, 9, 9))
            #expect(quoted.protocol == .tcp && quoted.totalLength == 140)
        }
    }

    @Test func construct() {
        var out = Array(Fixture.icmpEcho[34..<98])
        for i in 0..<8 { out[i] = 0xa5 }
        out.write { buf in
            let icmp = ICMPv4MutableHeader(unchecked: buf)
            icmp.type = .echoRequest
            icmp.code = 0
            icmp.identifier = 0x1234
            icmp.sequenceNumber = 1
            icmp.checksum = 0
            icmp.fillChecksum()
        }
        #expect(out == Array(Fixture.icmpEcho[34..<98]))
    }

    @Test func parse() throws {
        let echo = try Fixture.icmpEcho.read(34..<98) { ICMPv4Repr(parsing: try ICMPv4Header(validating: $0)) }
        #expect(echo == ICMPv4Repr(message: .echoRequest(identifier: 0x1234, sequenceNumber: 1), payloadLength: 56))
        let fragNeeded = try Fixture.icmpFragNeeded.read(34..<70) { ICMPv4Repr(parsing: try ICMPv4Header(validating: $0)) }
        #expect(fragNeeded == ICMPv4Repr(message: .destinationUnreachable(code: 4, nextHopMTU: 1400), payloadLength: 28))
        let exceeded = try Fixture.icmpTimeExceeded.read(34..<70) { ICMPv4Repr(parsing: try ICMPv4Header(validating: $0)) }
        #expect(exceeded == ICMPv4Repr(message: .timeExceeded(code: ICMPv4Code.ttlExceeded), payloadLength: 28))
    }

    @Test func emit() {
        let cases: [([UInt8], ICMPv4Repr)] = [
            (Array(Fixture.icmpEcho[34..<98]), ICMPv4Repr(message: .echoRequest(identifier: 0x1234, sequenceNumber: 1), payloadLength: 56)),
            (Array(Fixture.icmpFragNeeded[34..<70]), ICMPv4Repr(message: .destinationUnreachable(code: 4, nextHopMTU: 1400), payloadLength: 28)),
            (Array(Fixture.icmpTimeExceeded[34..<70]), ICMPv4Repr(message: .timeExceeded(code: 0), payloadLength: 28)),
        ]
        for (expected, repr) in cases {
            var out = poisoned(8) + expected[8...]   // payload first, then emit the header
            out.write { repr.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
            #expect(out == expected)
        }
    }

    @Test func negative() {
        #expect(wireError(Array(Fixture.icmpEcho[34..<41])) { _ = try ICMPv4Header(validating: $0) } == .truncated)
        var bad = Array(Fixture.icmpEcho[34..<98])
        bad[20] ^= 1
        #expect(bad.read { ICMPv4Header(unchecked: $0).isChecksumValid } == false)
    }

    @Test func parseKeepsOddBitsAsOther() throws {
        // Echo with a non-zero code, unreachable with an RFC 4884 length: kept exactly.
        var echo = Array(Fixture.icmpEcho[34..<98]); echo[1] = 3
        let r1 = echo.read { ICMPv4Repr(parsing: ICMPv4Header(unchecked: $0)) }
        #expect(r1.message == .other(type: .echoRequest, code: 3, restOfHeader: 0x1234_0001))
        var unreachable = Array(Fixture.icmpFragNeeded[34..<70]); unreachable[5] = 7
        let r2 = unreachable.read { ICMPv4Repr(parsing: ICMPv4Header(unchecked: $0)) }
        #expect(r2.message == .other(type: .destinationUnreachable, code: 4, restOfHeader: 0x0007_0578))
    }

    @Test func identifierRewriteIsIncremental() {
        var rng = SplitMix64(seed: 792)
        var msg = Array(Fixture.icmpEcho[34..<98])
        for _ in 0..<500 {
            let id = rng.u16()
            msg.write { ICMPv4MutableHeader(unchecked: $0).rewriteIdentifier(id) }
            msg.read { b in
                let h = ICMPv4Header(unchecked: b)
                #expect(h.identifier == id && h.isChecksumValid)
            }
        }
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 792_792)
        for _ in 0..<3000 {
            let message: ICMPv4Message
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: message = .echoRequest(identifier: rng.u16(), sequenceNumber: rng.u16())
            case 1: message = .echoReply(identifier: rng.u16(), sequenceNumber: rng.u16())
            case 2: message = .destinationUnreachable(code: UInt8.random(in: 0...15, using: &rng), nextHopMTU: rng.u16())
            case 3: message = .timeExceeded(code: UInt8.random(in: 0...1, using: &rng))
            default:
                var type = rng.byte()
                if [0, 3, 8, 11].contains(type) { type = 13 }
                message = .other(type: ICMPv4Type(type), code: rng.byte(), restOfHeader: rng.u32())
            }
            let repr = ICMPv4Repr(message: message, payloadLength: Int.random(in: 0...40, using: &rng))
            var buf = poisoned(8) + rng.bytes(repr.payloadLength)
            buf.write { repr.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
            let back: ICMPv4Repr? = buf.read { b in
                guard let h = try? ICMPv4Header(validating: b), h.isChecksumValid else { return nil }
                return ICMPv4Repr(parsing: h)
            }
            #expect(back == repr)
        }
    }

    @Test func typeIsOpen() {
        #expect(ICMPv4Type(rawValue: 42).rawValue == 42)
        #expect(ICMPv4Type(42).description == "icmp-type-42")
        #expect(ICMPv4Type.timeExceeded.isError && !ICMPv4Type.echoReply.isError)
    }
}
