import Testing
import Wire

@Suite struct UDPTests {
    let pseudo = IPPseudoHeader.ipv4(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 53))
    let dnsQuery = bytes(hex: "abcd01000001000000000000076578616d706c6503636f6d0000010001")

    // Fixture.udpDns from offset 34: 10.0.0.1.53000 > 10.0.0.53.53: [udp sum ok] (29 bytes)
    // 0x0020:  .... cf08 0035 0025 a0f5 abcd 0100 0001
    @Test func deconstruct() throws {
        try Fixture.udpDns.read(34..<71) { buf in
            let udp = try UDPHeader(validating: buf)
            #expect(udp.sourcePort == 53000)
            #expect(udp.destinationPort == 53)
            #expect(udp.length == 37)
            #expect(udp.checksum == 0xa0f5)
            #expect(udp.isChecksumValid(pseudoHeader: pseudo))
            #expect(udp.computedChecksum(pseudoHeader: pseudo) == 0xa0f5)
            #expect(Array(udp.payload) == dnsQuery)
        }
    }

    @Test func construct() {
        var out = poisoned(8) + dnsQuery
        out.write { buf in
            let udp = UDPMutableHeader(unchecked: buf)
            udp.sourcePort = 53000
            udp.destinationPort = 53
            udp.length = 37
            udp.fillChecksum(pseudoHeader: pseudo)
        }
        #expect(out == Array(Fixture.udpDns[34..<71]))
    }

    @Test func parse() throws {
        let repr = try Fixture.udpDns.read(34..<71) { UDPRepr(parsing: try UDPHeader(validating: $0)) }
        #expect(repr == UDPRepr(sourcePort: 53000, destinationPort: 53, payloadLength: 29))
        #expect(repr.bufferLength == 37)
    }

    @Test func emit() {
        var out = poisoned(8) + dnsQuery
        out.write { UDPRepr(sourcePort: 53000, destinationPort: 53, payloadLength: 29)
            .emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        #expect(out == Array(Fixture.udpDns[34..<71]))
        // Without a pseudo-header the checksum is 0, "none".
        var none = poisoned(8) + dnsQuery
        none.write { UDPRepr(sourcePort: 1, destinationPort: 2, payloadLength: 29)
            .emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: nil) }
        #expect(none[6] == 0 && none[7] == 0)
        #expect(none.read { UDPHeader(unchecked: $0).isChecksumValid(pseudoHeader: pseudo) })
    }

    @Test func negative() {
        let good = Array(Fixture.udpDns[34..<71])
        func check(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try UDPHeader(validating: $0) } }
        #expect(check(good) == nil)
        #expect(check(Array(good[0..<7])) == .truncated)
        var small = good; small[4] = 0; small[5] = 7
        #expect(check(small) == .badLength)
        #expect(check(Array(good[0..<36])) == .badLength)   // length 37 past the buffer
        // Over IPv6 a zero checksum is not "none".
        var zero = good; zero[6] = 0; zero[7] = 0
        #expect(zero.read { UDPHeader(unchecked: $0).isChecksumValid(pseudoHeader: .ipv6(source: .loopback, destination: .loopback)) } == false)
    }

    @Test func portRewriteIsIncrementalAndKeepsZero() {
        var rng = SplitMix64(seed: 768)
        var msg = Array(Fixture.udpDns[34..<71])
        var none = msg; none[6] = 0; none[7] = 0
        for _ in 0..<500 {
            let sp = rng.u16(), dp = rng.u16()
            msg.write { b in
                let udp = UDPMutableHeader(unchecked: b)
                udp.rewriteSourcePort(sp)
                udp.rewriteDestinationPort(dp)
            }
            msg.read { b in
                let udp = UDPHeader(unchecked: b)
                #expect(udp.sourcePort == sp && udp.destinationPort == dp)
                #expect(udp.isChecksumValid(pseudoHeader: pseudo))
                #expect(udp.checksum == udp.computedChecksum(pseudoHeader: pseudo))
            }
            none.write { UDPMutableHeader(unchecked: $0).rewriteDestinationPort(dp) }
            #expect(none[6] == 0 && none[7] == 0)
        }
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 0x768)
        for _ in 0..<2000 {
            let repr = UDPRepr(sourcePort: rng.u16(), destinationPort: rng.u16(), payloadLength: Int.random(in: 0...64, using: &rng))
            let pseudo: IPPseudoHeader = rng.bool() ? .ipv4(source: rng.ipv4(), destination: rng.ipv4())
                : .ipv6(source: rng.ipv6(), destination: rng.ipv6())
            var buf = poisoned(8) + rng.bytes(repr.payloadLength)
            buf.write { repr.emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
            let back: UDPRepr? = buf.read { b in
                guard let h = try? UDPHeader(validating: b), h.isChecksumValid(pseudoHeader: pseudo), h.checksum != 0 else { return nil }
                return UDPRepr(parsing: h)
            }
            #expect(back == repr)
        }
    }
}
