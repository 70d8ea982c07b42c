import Testing
import Wire

@Suite struct IPv4Tests {
    // Fixture.tcpSyn from offset 14 (IPv4 header, 20 bytes):
    // 0x0000:  .... .... .... .... .... .... 0800 4500
    // 0x0010:  003c 1c46 4000 4006 0a12 0a00 0001 0a00
    // 0x0020:  0064 ....
    // (tos 0x0, ttl 64, id 7238, offset 0, flags [DF], proto TCP (6), length 60)
    let synRange = 14..<74
    var synRepr: IPv4Repr {
        IPv4Repr(sourceAddress: IPv4Address(10, 0, 0, 1), destinationAddress: IPv4Address(10, 0, 0, 100),
                 protocol: .tcp, payloadLength: 40, timeToLive: 64, identification: 0x1c46, dontFragment: true)
    }

    @Test func deconstruct() throws {
        try Fixture.tcpSyn.read(synRange) { buf in
            let ip = try IPv4Header(validating: buf)
            #expect(ip.version == 4)
            #expect(ip.headerLength == 20)
            #expect(ip.dscp == 0 && ip.ecn == 0)
            #expect(ip.totalLength == 60)
            #expect(ip.identification == 7238)
            #expect(ip.dontFragment && !ip.moreFragments && !ip.reservedFlag)
            #expect(ip.fragmentOffset == 0 && !ip.isFragment && !ip.isNonFirstFragment)
            #expect(ip.timeToLive == 64)
            #expect(ip.protocol == .tcp)
            #expect(ip.headerChecksum == 0x0a12)
            #expect(ip.isChecksumValid)
            #expect(ip.computedChecksum == 0x0a12)
            #expect(ip.sourceAddress == IPv4Address(10, 0, 0, 1))
            #expect(ip.destinationAddress == IPv4Address(10, 0, 0, 100))
            #expect(ip.options.isEmpty)
            #expect(ip.payload.count == 40)
        }
    }

    // Fixture.ipv4Options: (tos 0xb8, ttl 5, id 0, offset 0, flags [none], proto UDP (17), length 43,
    // options (RR 0.0.0.0 0.0.0.0,NOP))
    // 0x0000:  .... .... .... .... .... .... 0800 48b8
    // 0x0010:  002b 0000 0000 0511 8ff9 0a01 0101 0a02
    // 0x0020:  0202 070b 0400 0000 0000 0000 0001 0007
    @Test func deconstructWithOptions() throws {
        try Fixture.ipv4Options.read(14..<57) { buf in
            let ip = try IPv4Header(validating: buf)
            #expect(ip.headerLength == 32)
            #expect(ip.dscp == 46 && ip.ecn == 0)  // 0xb8 = EF
            #expect(ip.totalLength == 43)
            #expect(ip.timeToLive == 5)
            #expect(ip.protocol == .udp)
            #expect(Array(ip.options) == bytes(hex: "070b0400 00000000 00000001"))
            #expect(ip.payload.count == 11)
            #expect(ip.payload.first == 0x00 && ip.payload[1] == 0x07)
            #expect(ip.isChecksumValid)
        }
    }

    // Fixture.fragFirst: flags [+] (MF), id 16962; Fixture.fragSecond: offset 40.
    @Test func fragments() throws {
        try Fixture.fragFirst.read(14..<74) { buf in
            let ip = try IPv4Header(validating: buf)
            #expect(ip.moreFragments && !ip.dontFragment)
            #expect(ip.fragmentOffset == 0)
            #expect(ip.isFragment && !ip.isNonFirstFragment)
        }
        try Fixture.fragSecond.read(14..<58) { buf in
            let ip = try IPv4Header(validating: buf)
            #expect(!ip.moreFragments)
            #expect(ip.fragmentOffset == 40)
            #expect(ip.isFragment && ip.isNonFirstFragment)
        }
    }

    @Test func construct() {
        var out = poisoned(20)
        out.write { buf in
            let ip = IPv4MutableHeader(unchecked: buf)
            ip.version = 4
            ip.headerLength = 20
            ip.dscp = 0
            ip.ecn = 0
            ip.totalLength = 60
            ip.identification = 0x1c46
            ip.reservedFlag = false
            ip.dontFragment = true
            ip.moreFragments = false
            ip.fragmentOffset = 0
            ip.timeToLive = 64
            ip.protocol = .tcp
            ip.sourceAddress = IPv4Address(10, 0, 0, 1)
            ip.destinationAddress = IPv4Address(10, 0, 0, 100)
            ip.fillChecksum()
        }
        #expect(out == Array(Fixture.tcpSyn[14..<34]))
    }

    @Test func parse() throws {
        let repr = try Fixture.tcpSyn.read(synRange) { IPv4Repr(parsing: try IPv4Header(validating: $0)) }
        #expect(repr == synRepr)
        #expect(repr.headerLength == 20 && repr.bufferLength == 60)
        let withOptions = try Fixture.ipv4Options.read(14..<57) { IPv4Repr(parsing: try IPv4Header(validating: $0)) }
        #expect(withOptions == IPv4Repr(sourceAddress: IPv4Address(10, 1, 1, 1), destinationAddress: IPv4Address(10, 2, 2, 2),
                                        protocol: .udp, payloadLength: 11, timeToLive: 5, dscp: 46,
                                        options: bytes(hex: "070b0400 00000000 00000001")))
    }

    @Test func emit() {
        var out = poisoned(20)
        out.write { synRepr.emit(into: IPv4MutableHeader(unchecked: $0)) }
        #expect(out == Array(Fixture.tcpSyn[14..<34]))
        let withOptions = IPv4Repr(sourceAddress: IPv4Address(10, 1, 1, 1), destinationAddress: IPv4Address(10, 2, 2, 2),
                                   protocol: .udp, payloadLength: 11, timeToLive: 5, dscp: 46,
                                   options: bytes(hex: "070b0400 00000000 00000001"))
        var out2 = poisoned(32)
        out2.write { withOptions.emit(into: IPv4MutableHeader(unchecked: $0)) }
        #expect(out2 == Array(Fixture.ipv4Options[14..<46]))
    }

    @Test func negative() {
        let good = Array(Fixture.tcpSyn[synRange])
        func check(_ bytes: [UInt8]) -> WireError? { wireError(bytes) { _ = try IPv4Header(validating: $0) } }
        #expect(check(good) == nil)
        #expect(check(Array(good[0..<19])) == .truncated)
        var v6 = good; v6[0] = 0x65
        #expect(check(v6) == .badVersion)
        var ihl4 = good; ihl4[0] = 0x44
        #expect(check(ihl4) == .badHeaderLength)
        var ihlPast = good; ihlPast[0] = 0x4F          // 60-byte header in a 60-byte buffer is fine…
        #expect(check(ihlPast) == nil)
        #expect(check(Array(ihlPast[0..<59])) == .badHeaderLength)  // …but not in 59
        var short = good; short[2] = 0; short[3] = 19  // total length below the header
        #expect(check(short) == .badLength)
        var long = good; long[3] = 61                  // total length past the buffer
        #expect(check(long) == .badLength)
        // Padding after the datagram is fine, and not payload.
        let padded = good + [0, 0, 0, 0]
        #expect(padded.read { (try? IPv4Header(validating: $0))?.payload.count } == 40)
        // A corrupted checksum validates structurally but does not verify.
        var badSum = good; badSum[10] ^= 0xFF
        #expect(badSum.read { (try? IPv4Header(validating: $0))?.isChecksumValid } == false)
    }

    @Test func decrementTimeToLiveIsIncremental() {
        var frame = Array(Fixture.tcpSyn[synRange])
        for expected in stride(from: 63, through: 0, by: -1) {
            let ttl = frame.write { IPv4MutableHeader(unchecked: $0).decrementTimeToLive() }
            #expect(ttl == UInt8(expected))
            #expect(frame.read { IPv4Header(unchecked: $0).isChecksumValid })
        }
    }

    @Test func addressRewriteIsIncremental() {
        var rng = SplitMix64(seed: 791)
        var frame = Array(Fixture.ipv4Options[14..<57])
        for _ in 0..<500 {
            let src = rng.ipv4(), dst = rng.ipv4()
            frame.write { b in
                let ip = IPv4MutableHeader(unchecked: b)
                ip.rewriteSourceAddress(src)
                ip.rewriteDestinationAddress(dst)
            }
            frame.read { b in
                let ip = IPv4Header(unchecked: b)
                #expect(ip.sourceAddress == src && ip.destinationAddress == dst)
                #expect(ip.headerChecksum == ip.computedChecksum)
            }
        }
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 0x0791)
        for _ in 0..<3000 {
            let optionWords = Int.random(in: 0...10, using: &rng)
            let repr = IPv4Repr(sourceAddress: rng.ipv4(), destinationAddress: rng.ipv4(),
                                protocol: IPProtocol(rng.byte()), payloadLength: Int.random(in: 0...64, using: &rng),
                                timeToLive: rng.byte(), identification: rng.u16(), dontFragment: rng.bool(),
                                moreFragments: rng.bool(), fragmentOffset: 8 * Int.random(in: 0...8191, using: &rng),
                                dscp: UInt8.random(in: 0...63, using: &rng), ecn: UInt8.random(in: 0...3, using: &rng),
                                options: rng.bytes(4 * optionWords))
            var buf = poisoned(repr.bufferLength)
            buf.write { repr.emit(into: IPv4MutableHeader(unchecked: $0)) }
            let back: IPv4Repr? = buf.read { b in
                guard let h = try? IPv4Header(validating: b), h.isChecksumValid else { return nil }
                return IPv4Repr(parsing: h)
            }
            #expect(back == repr)
        }
    }

    @Test func protocolNumbersAreOpen() {
        #expect(IPProtocol(rawValue: 132).rawValue == 132)
        #expect(IPProtocol(132).description == "ip-proto-132")
        #expect(IPProtocol.udp.description == "udp")
        #expect(IPProtocol(4) == .ipip)
        #expect(IPProtocol.fragment.isIPv6ExtensionHeader && !IPProtocol.tcp.isIPv6ExtensionHeader)
    }
}
