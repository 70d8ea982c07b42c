import Testing
import Wire

@Suite struct IPIPTests {
    // Fixture.ipip from offset 14: 10.0.0.2 > 10.0.0.1: (tos 0x10, ttl 64, id 0, flags [DF], proto IPIP (4), length 60)
    // inner 123.123.123.123.40000 > 10.0.0.100.80: Flags [S], cksum 0x1706 (correct)
    // 0x0000:  .... .... .... .... .... .... 0800 4510
    // 0x0010:  003c 0000 4000 4004 26ac 0a00 0002 0a00
    // 0x0020:  0001 4510 0028 0009 4000 4006 395d 7b7b
    @Test func decapsulate() throws {
        let d = try Fixture.ipip.read(14..<74) { try IPIP.decapsulate($0) }
        #expect(d.innerOffset == 20)
        #expect(d.outer.sourceAddress == IPv4Address(10, 0, 0, 2))
        #expect(d.outer.protocol == .ipip)
        #expect(d.inner.sourceAddress == IPv4Address(123, 123, 123, 123))
        #expect(d.inner.destinationAddress == IPv4Address(10, 0, 0, 100))
        #expect(d.inner.totalLength == 40)
    }

    @Test func encapsulateInHeadroom() throws {
        // The inner datagram sits after 20 bytes of 0xa5 headroom; encapsulation
        // must reproduce the fixture's outer header byte for byte.
        var buf = poisoned(20) + Array(Fixture.ipip[34..<74])
        let outerLength = try buf.write { b in
            try IPIP.encapsulate(b, innerOffset: 20, source: IPv4Address(10, 0, 0, 2),
                                 destination: IPv4Address(10, 0, 0, 1), timeToLive: 64, identification: 0).totalLength
        }
        #expect(outerLength == 60)
        #expect(buf == Array(Fixture.ipip[14..<74]))
    }

    @Test func negative() throws {
        let good = Array(Fixture.ipip[14..<74])
        func check(_ b: [UInt8]) -> WireError? { wireError(b) { _ = try IPIP.decapsulate($0) } }
        #expect(check(good) == nil)
        // Not protocol 4 (header checksum fixed so only the protocol differs).
        var tcp = good
        tcp.write { b in let h = IPv4MutableHeader(unchecked: b); h.protocol = .tcp; h.fillChecksum() }
        #expect(check(tcp) == .unsupported)
        var badSum = good; badSum[10] ^= 0x01
        #expect(check(badSum) == .badChecksum)
        var fragment = good
        fragment.write { b in let h = IPv4MutableHeader(unchecked: b); h.moreFragments = true; h.fillChecksum() }
        #expect(check(fragment) == .unsupported)
        var innerBad = good; innerBad[20] = 0x65
        #expect(check(innerBad) == .badVersion)
        // Inner total length past the outer payload.
        var innerLong = good; innerLong[23] = 41
        #expect(check(innerLong) == .badLength)
        // Encapsulating garbage fails with the inner header's reason.
        var garbage = poisoned(20) + [UInt8](repeating: 0x45, count: 10)
        let error = garbage.write { b -> WireError? in
            do { _ = try IPIP.encapsulate(b, innerOffset: 20, source: .any, destination: .any); return nil } catch { return error as? WireError }
        }
        #expect(error == .truncated)
    }
}
