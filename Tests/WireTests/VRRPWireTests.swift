import Testing
import Wire

/// VRRPv3 adverts against one keepalived 2.2.7 sent (`vrrp_version 3`,
/// VRID 42, priority 50, `advert_int 0.1`, VIP 10.78.0.100, from
/// 10.78.0.5), captured on its interface and printed with `tshark -x`:
///
///     0000  01 00 5e 00 00 12 02 00 fe 75 70 e7 08 00 45 c0   ..^......up...E.
///     0010  00 20 00 01 00 00 ff 70 d0 47 0a 4e 00 05 e0 00   . .....p.G.N....
///     0020  00 12 31 2a 32 01 00 0a a7 36 0a 4e 00 64         ..1*2....6.N.d
@Suite struct VRRPWireTests {
    static let keepalived = bytes(hex: """
        01005e000012 0200fe7570e7 0800
        45c0 0020 0001 0000 ff70 d047 0a4e0005 e0000012
        31 2a 32 01 000a a736 0a4e0064
        """)
    static let source = IPv4Address(10, 78, 0, 5)
    static let repr = VRRPRepr(virtualRouterID: 42, priority: 50, maxAdvertisementInterval: 10,
                               addresses: [IPv4Address(10, 78, 0, 100)])

    @Test func deconstruct() throws {
        try Self.keepalived.read(34..<46) { buf in
            let h = try VRRPHeader(validating: buf)
            #expect(h.version == 3 && h.type == 1)
            #expect(h.virtualRouterID == 42 && h.priority == 50 && h.addressCount == 1)
            #expect(h.maxAdvertisementInterval == 10)
            #expect(h.checksum == 0xa736)
            #expect(h.address(0) == IPv4Address(10, 78, 0, 100))
            // keepalived's checksum covers the IPv4 pseudo-header, as ours does (RFC 9568 §5.2.8).
            #expect(h.isChecksumValid(source: Self.source, destination: VRRP.multicastAddress))
            #expect(!h.isChecksumValid(source: IPv4Address(10, 78, 0, 6), destination: VRRP.multicastAddress))
        }
    }

    @Test func parse() throws {
        let r = try Self.keepalived.read(34..<46) { VRRPRepr(parsing: try VRRPHeader(validating: $0)) }
        #expect(r == Self.repr)
        try Self.keepalived.read(14..<46) { buf in
            guard case .success = VRRPRefusal.check(try IPv4Header(validating: buf)) else {
                Issue.record("keepalived's advert refused")
                return
            }
        }
    }

    @Test func emitIsKeepalivedsMessage() {
        var out = poisoned(12)
        out.write { Self.repr.emit(into: $0, source: Self.source) }
        #expect(out == Array(Self.keepalived[34..<46]))
    }

    /// The whole frame, IPv4 header included (TOS 0xc0, no DF, TTL 255), byte for byte.
    @Test func emitFrameIsKeepalivedsFrame() {
        var out = poisoned(64)
        let n = out.write { Self.repr.emitFrame(into: $0, sourceMAC: MACAddress(0x02, 0x00, 0xfe, 0x75, 0x70, 0xe7),
                                                 source: Self.source, identification: 1) }
        #expect(n == 46)
        #expect(Array(out[0..<n]) == Self.keepalived)
    }

    @Test func negative() {
        let message = Array(Self.keepalived[34..<46])
        #expect(wireError(Array(message[0..<7])) { _ = try VRRPHeader(validating: $0) } == .truncated)
        #expect(wireError(Array(message[0..<11])) { _ = try VRRPHeader(validating: $0) } == .badLength)
        var v2 = message
        v2[0] = 0x21
        #expect(wireError(v2) { _ = try VRRPHeader(validating: $0) } == .badVersion)
        var type2 = message
        type2[0] = 0x32
        #expect(wireError(type2) { _ = try VRRPHeader(validating: $0) } == .unsupported)
    }

    @Test func roundTripsWithManyAddresses() throws {
        var rng = SplitMix64(seed: 9568)
        for _ in 0..<200 {
            let r = VRRPRepr(virtualRouterID: UInt8.random(in: 1...255, using: &rng), priority: UInt8.random(in: 0...255, using: &rng),
                             maxAdvertisementInterval: UInt16.random(in: 1...4095, using: &rng),
                             addresses: (0..<Int.random(in: 1...20, using: &rng)).map { _ in IPv4Address(rawValue: UInt32.random(in: 0...UInt32.max, using: &rng)) })
            let source = IPv4Address(rawValue: UInt32.random(in: 0...UInt32.max, using: &rng))
            var out = poisoned(r.bufferLength)
            out.write { r.emit(into: $0, source: source) }
            try out.read { buf in
                let h = try VRRPHeader(validating: buf)
                #expect(VRRPRepr(parsing: h) == r)
                #expect(h.isChecksumValid(source: source, destination: VRRP.multicastAddress))
            }
        }
    }
}
