import Testing
import Wire

@Suite struct TCPTests {
    let pseudo = IPPseudoHeader.ipv4(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 100))
    let synOptions = bytes(hex: "020405b4 0402080a 0001e240 00000000 01030307")

    // Fixture.tcpSyn from offset 34: 10.0.0.1.40000 > 10.0.0.100.80: Flags [S], cksum 0x7572 (correct),
    // seq 287454020, win 64240, options [mss 1460,sackOK,TS val 123456 ecr 0,nop,wscale 7], length 0
    // 0x0020:  .... 9c40 0050 1122 3344 0000 0000 a002
    // 0x0030:  faf0 7572 0000 0204 05b4 0402 080a 0001
    // 0x0040:  e240 0000 0000 0103 0307
    @Test func deconstruct() throws {
        try Fixture.tcpSyn.read(34..<74) { buf in
            let tcp = try TCPHeader(validating: buf)
            #expect(tcp.sourcePort == 40000)
            #expect(tcp.destinationPort == 80)
            #expect(tcp.sequenceNumber == 287_454_020)
            #expect(tcp.acknowledgmentNumber == 0)
            #expect(tcp.headerLength == 40)
            #expect(tcp.reserved == 0)
            #expect(tcp.flags == .syn)
            #expect(tcp.window == 64240)
            #expect(tcp.checksum == 0x7572)
            #expect(tcp.urgentPointer == 0)
            #expect(Array(tcp.options) == synOptions)
            #expect(tcp.payload.isEmpty)
            #expect(tcp.isChecksumValid(pseudoHeader: pseudo))
            #expect(tcp.computedChecksum(pseudoHeader: pseudo) == 0x7572)
        }
    }

    // Fixture.ipv6Tcp from offset 54: 2001:db8::1.443 > 2001:db8::2.50000: Flags [S.], cksum 0x8b5f (correct)
    @Test func deconstructOverIPv6() throws {
        try Fixture.ipv6Tcp.read(54..<74) { buf in
            let tcp = try TCPHeader(validating: buf)
            #expect(tcp.flags == [.syn, .ack])
            #expect(tcp.flags.description == "S.")
            #expect(tcp.isChecksumValid(pseudoHeader: .ipv6(source: IPv6Address("2001:db8::1")!, destination: IPv6Address("2001:db8::2")!)))
        }
    }

    @Test func construct() {
        var out = poisoned(40)
        out.write { buf in
            let tcp = TCPMutableHeader(unchecked: buf)
            tcp.sourcePort = 40000
            tcp.destinationPort = 80
            tcp.sequenceNumber = 287_454_020
            tcp.acknowledgmentNumber = 0
            buf[12] = 0   // reserved bits start clear; headerLength keeps them
            tcp.headerLength = 40
            tcp.flags = .syn
            tcp.window = 64240
            tcp.urgentPointer = 0
            tcp.options.copyBytes(from: synOptions)
            tcp.fillChecksum(pseudoHeader: pseudo)
        }
        #expect(out == Array(Fixture.tcpSyn[34..<74]))
    }

    var synRepr: TCPRepr {
        TCPRepr(sourcePort: 40000, destinationPort: 80, sequenceNumber: 287_454_020, flags: .syn, window: 64240,
                options: synOptions)
    }

    @Test func parse() throws {
        let repr = try Fixture.tcpSyn.read(34..<74) { TCPRepr(parsing: try TCPHeader(validating: $0)) }
        #expect(repr == synRepr)
        #expect(repr.headerLength == 40 && repr.bufferLength == 40)
    }

    @Test func emit() {
        var out = poisoned(40)
        out.write { synRepr.emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        #expect(out == Array(Fixture.tcpSyn[34..<74]))
    }

    @Test func negative() {
        let good = Array(Fixture.tcpSyn[34..<74])
        func check(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try TCPHeader(validating: $0) } }
        #expect(check(good) == nil)
        #expect(check(Array(good[0..<19])) == .truncated)
        var four = good; four[12] = 0x40
        #expect(check(four) == .badHeaderLength)
        #expect(check(Array(good[0..<39])) == .badHeaderLength)  // options cut off
        var fifteen = good; fifteen[12] = 0xF0
        #expect(check(fifteen) == .badHeaderLength)
    }

    @Test func flags() {
        #expect(TCPFlags(rawValue: 0x18).description == "P.")
        #expect(TCPFlags([.fin, .psh, .ack]).description == "FP.")
        #expect(TCPFlags([.syn, .ece, .cwr]).description == "SEW")
        #expect(TCPFlags().description == "none")
        #expect(TCPFlags(rawValue: 0xFF).contains([.urg, .rst]))
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 9293)
        for _ in 0..<2000 {
            let repr = TCPRepr(sourcePort: rng.u16(), destinationPort: rng.u16(), sequenceNumber: rng.u32(),
                               acknowledgmentNumber: rng.u32(), flags: TCPFlags(rawValue: rng.byte()), window: rng.u16(),
                               urgentPointer: rng.u16(), options: rng.bytes(4 * Int.random(in: 0...10, using: &rng)),
                               payloadLength: Int.random(in: 0...64, using: &rng))
            let pseudo: IPPseudoHeader = rng.bool() ? .ipv4(source: rng.ipv4(), destination: rng.ipv4())
                : .ipv6(source: rng.ipv6(), destination: rng.ipv6())
            var buf = poisoned(repr.headerLength) + rng.bytes(repr.payloadLength)
            buf.write { repr.emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
            let back: TCPRepr? = buf.read { b in
                guard let h = try? TCPHeader(validating: b), h.isChecksumValid(pseudoHeader: pseudo) else { return nil }
                return TCPRepr(parsing: h)
            }
            #expect(back == repr)
        }
    }
}
