// Bytes BIRD 2.0.12 sent us, captured by the live test
// (BGP_BIRD_RECORD=/tmp/bird.hex swift test --filter BGPBird): everything
// read from the TCP connection, in order. BIRD: AS 65001, router id
// 10.179.0.1, hold 3; us: AS 4200000002. Parsed here without root or BIRD.
//
//   swift test --skip-build --filter BGPBirdFixture

import Testing
@testable import Wire

@Suite struct BGPBirdFixtureTests {
    /// OPEN (all capabilities in one optional parameter: MP IPv4 unicast,
    /// route refresh, graceful restart 120 s, 4-octet AS 65001, enhanced
    /// route refresh, long-lived graceful restart), KEEPALIVE, UPDATE of
    /// three static routes, End-of-RIB, KEEPALIVE, UPDATE withdrawing the
    /// three (`birdc disable s4`).
    static let stream = bytes(hex: """
        ffffffffffffffffffffffffffffffff 0035 01 04 fde9 0003 0ab30001 18
          02 16 01 04 00010001 02 00 40 02 0078 41 04 0000fde9 46 00 47 00
        ffffffffffffffffffffffffffffffff 0013 04
        ffffffffffffffffffffffffffffffff 0038 02 0000 0014
          40 01 01 00  40 02 06 02 01 0000fde9  40 03 04 0ab30001
          20 c0000264  18 0ac802  18 0ac801
        ffffffffffffffffffffffffffffffff 0017 02 0000 0000
        ffffffffffffffffffffffffffffffff 0013 04
        ffffffffffffffffffffffffffffffff 0024 02 000d 20 c0000264 18 0ac802 18 0ac801 0000
        """)

    static let prefixes = [IPv4Prefix("192.0.2.100/32")!, IPv4Prefix("10.200.2.0/24")!, IPv4Prefix("10.200.1.0/24")!]

    @Test func birdsMessagesParse() throws {
        var framer = BGPFramer()
        framer.append(Self.stream)
        var messages: [(type: UInt8, body: [UInt8])] = []
        while let m = try framer.next() { messages.append(m) }
        #expect(framer.buffered == 0)
        let decoded = try messages.map { try BGPMessage.decode(type: $0.type, body: $0.body, .fourOctet) }
        #expect(decoded.count == 6)

        guard case .open(let open) = decoded[0] else { Issue.record("not an OPEN: \(decoded[0])"); return }
        #expect(open.version == 4 && open.myAS == 65001 && open.holdTime == 3)
        #expect(open.bgpIdentifier == IPv4Address(10, 179, 0, 1))
        #expect(open.autonomousSystem == 65001 && open.supportsFourOctetAS)
        #expect(open.capabilities.map(\.code) == [1, 2, 64, 65, 70, 71])
        try open.validate(expectedPeerAS: 65001, localIdentifier: IPv4Address(10, 179, 0, 2), localAS: 4_200_000_002)

        #expect(decoded[1] == .keepalive && decoded[4] == .keepalive)
        let attributes = BGPPathAttributes(origin: .igp, asPath: [.sequence([65001])], nextHop: IPv4Address(10, 179, 0, 1))
        let announce = BGPUpdate(attributes: attributes, nlri: Self.prefixes)
        #expect(decoded[2] == .update(announce))
        guard case .update(let eor) = decoded[3] else { Issue.record("not an UPDATE"); return }
        #expect(eor.isEndOfRIB)
        #expect(decoded[5] == .update(BGPUpdate(withdrawn: Self.prefixes)))

        // Our encoder writes BIRD's UPDATEs byte for byte (same attribute
        // order, same prefix encoding).
        for (i, m) in decoded.enumerated() where m.type == 2 {
            #expect(m.encode(.fourOctet) == [UInt8](repeating: 0xFF, count: 16) + [UInt8((19 + messages[i].body.count) >> 8), UInt8((19 + messages[i].body.count) & 0xFF), 2] + messages[i].body)
        }
    }

    @Test func birdsStreamInAnyCut() throws {
        for cut in [1, 3, 19, 53, 100] {
            var framer = BGPFramer()
            var count = 0
            var i = 0
            while i < Self.stream.count {
                framer.append(Self.stream[i..<min(i + cut, Self.stream.count)])
                i += cut
                while try framer.next() != nil { count += 1 }
            }
            #expect(count == 6, "cut \(cut)")
        }
    }
}
