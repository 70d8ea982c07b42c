import Testing
import Wire

@Suite struct ARPTests {
    let a = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    var request: ARPRepr {
        ARPRepr(operation: .request, senderHardwareAddress: a, senderProtocolAddress: IPv4Address(10, 0, 0, 1),
                targetHardwareAddress: .zero, targetProtocolAddress: IPv4Address(10, 0, 0, 2))
    }

    // Request who-has 10.0.0.2 tell 10.0.0.1 (Fixture.arpRequest, from offset 14):
    // 0x0000:  ffff ffff ffff 0200 0000 0001 0806 0001
    // 0x0010:  0800 0604 0001 0200 0000 0001 0a00 0001
    // 0x0020:  0000 0000 0000 0a00 0002 0000 0000 0000
    @Test func deconstruct() throws {
        try Fixture.arpRequest.read(14..<60) { buf in
            let arp = try ARPHeader(validating: buf)
            #expect(arp.hardwareType == 1)
            #expect(arp.protocolType == .ipv4)
            #expect(arp.hardwareLength == 6 && arp.protocolLength == 4)
            #expect(arp.operation == .request)
            #expect(arp.senderHardwareAddress == a)
            #expect(arp.senderProtocolAddress == IPv4Address(10, 0, 0, 1))
            #expect(arp.targetHardwareAddress == .zero)
            #expect(arp.targetProtocolAddress == IPv4Address(10, 0, 0, 2))
        }
    }

    @Test func construct() {
        var out = poisoned(28)
        out.write { buf in
            let arp = ARPMutableHeader(unchecked: buf)
            arp.hardwareType = 1
            arp.protocolType = .ipv4
            arp.hardwareLength = 6
            arp.protocolLength = 4
            arp.operation = .request
            arp.senderHardwareAddress = a
            arp.senderProtocolAddress = IPv4Address(10, 0, 0, 1)
            arp.targetHardwareAddress = .zero
            arp.targetProtocolAddress = IPv4Address(10, 0, 0, 2)
        }
        #expect(out == Array(Fixture.arpRequest[14..<42]))
    }

    @Test func parse() throws {
        let repr = try Fixture.arpRequest.read(14..<60) { ARPRepr(parsing: try ARPHeader(validating: $0)) }
        #expect(repr == request)
    }

    @Test func emit() {
        var out = poisoned(28)
        out.write { request.emit(into: ARPMutableHeader(unchecked: $0)) }
        #expect(out == Array(Fixture.arpRequest[14..<42]))
    }

    @Test func negative() {
        let arp = Array(Fixture.arpRequest[14..<42])
        #expect(wireError(Array(arp[0..<27])) { _ = try ARPHeader(validating: $0) } == .truncated)
        for (index, value) in [(1, UInt8(6)), (3, UInt8(0xDD)), (4, UInt8(8)), (5, UInt8(16))] {
            var bad = arp
            bad[index] = value
            #expect(wireError(bad) { _ = try ARPHeader(validating: $0) } == .unsupported, "byte \(index)")
        }
    }

    @Test func operationIsOpen() {
        #expect(ARPOperation(rawValue: 9).rawValue == 9)
        #expect(ARPOperation.reply.description == "reply")
        #expect(ARPOperation(9).description == "arp-op-9")
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 826)
        for _ in 0..<2000 {
            let repr = ARPRepr(operation: ARPOperation(rng.u16()), senderHardwareAddress: rng.mac(),
                               senderProtocolAddress: rng.ipv4(), targetHardwareAddress: rng.mac(),
                               targetProtocolAddress: rng.ipv4())
            var buf = poisoned(repr.bufferLength)
            buf.write { repr.emit(into: ARPMutableHeader(unchecked: $0)) }
            #expect(buf.read { b in (try? ARPHeader(validating: b)).map(ARPRepr.init(parsing:)) } == repr)
        }
    }
}
