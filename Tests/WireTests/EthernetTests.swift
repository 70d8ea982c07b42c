import Testing
import Wire

@Suite struct EthernetTests {
    let a = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    let b = MACAddress(0x02, 0, 0, 0, 0, 0x02)

    // 0x0000:  0200 0000 0002 0200 0000 0001 0800 4500   (Fixture.icmpEcho)
    @Test func deconstruct() throws {
        try Fixture.icmpEcho.read { buf in
            let eth = try EthernetHeader(validating: buf)
            #expect(eth.destination == b)
            #expect(eth.source == a)
            #expect(!eth.hasVLANTag && eth.vlanTag == nil)
            #expect(eth.etherType == .ipv4)
            #expect(eth.headerLength == 14)
            #expect(eth.payload.count == 84)
            #expect(eth.payload.first == 0x45)
        }
    }

    // 0x0000:  0200 0000 0002 0200 0000 0001 8100 6064  (Fixture.vlanUdp: vlan 100, p 3)
    // 0x0010:  0800 4500 ...
    @Test func deconstructTagged() throws {
        try Fixture.vlanUdp.read { buf in
            let eth = try EthernetHeader(validating: buf)
            #expect(eth.hasVLANTag)
            #expect(eth.vlanTag == VLANTag(identifier: 100, priority: 3))
            #expect(eth.etherType == .ipv4)
            #expect(eth.headerLength == 18)
            #expect(eth.payload.first == 0x45)
        }
    }

    @Test func construct() throws {
        var frame = poisoned(18)
        frame.write { buf in
            let eth = EthernetMutableHeader(unchecked: buf)
            eth.destination = b
            eth.source = a
            buf[12] = 0x81; buf[13] = 0x00   // make it tagged first: the tag setter needs it
            eth.vlanTag = VLANTag(identifier: 100, priority: 3)
            eth.etherType = .ipv4
        }
        #expect(frame == Array(Fixture.vlanUdp[0..<18]))
        var untagged = poisoned(14)
        untagged.write { buf in
            let eth = EthernetMutableHeader(unchecked: buf)
            eth.destination = b
            eth.source = a
            eth.etherType = .ipv4
        }
        #expect(untagged == Array(Fixture.icmpEcho[0..<14]))
    }

    @Test func parse() throws {
        let repr = try Fixture.vlanUdp.read { EthernetRepr(parsing: try EthernetHeader(validating: $0)) }
        #expect(repr == EthernetRepr(destination: b, source: a, vlanTag: VLANTag(identifier: 100, priority: 3),
                                     etherType: .ipv4))
        #expect(repr.headerLength == 18)
    }

    @Test func emit() {
        for (fixture, tag) in [(Fixture.icmpEcho, nil), (Fixture.vlanUdp, VLANTag(identifier: 100, priority: 3))] {
            let repr = EthernetRepr(destination: b, source: a, vlanTag: tag, etherType: .ipv4)
            var out = poisoned(repr.headerLength)
            out.write { repr.emit(into: EthernetMutableHeader(unchecked: $0)) }
            #expect(out == Array(fixture[0..<repr.headerLength]))
        }
    }

    @Test func negative() {
        #expect(wireError(Array(Fixture.icmpEcho[0..<13])) { _ = try EthernetHeader(validating: $0) } == .truncated)
        #expect(wireError(Array(Fixture.vlanUdp[0..<17])) { _ = try EthernetHeader(validating: $0) } == .truncated)
        var qinq = Fixture.vlanUdp
        qinq[12] = 0x88; qinq[13] = 0xA8
        #expect(wireError(qinq) { _ = try EthernetHeader(validating: $0) } == .unsupported)
        var doubleTag = Fixture.vlanUdp
        doubleTag[16] = 0x81; doubleTag[17] = 0x00
        #expect(wireError(doubleTag) { _ = try EthernetHeader(validating: $0) } == .unsupported)
        // A bare 14-byte header with an unknown type is fine.
        #expect(wireError(Array(Fixture.icmpEcho[0..<14])) { _ = try EthernetHeader(validating: $0) } == nil)
    }

    @Test func vlanTCI() {
        let tag = VLANTag(tci: 0xF00F)
        #expect(tag.priority == 7 && tag.dropEligible && tag.identifier == 0x00F)
        #expect(tag.tci == 0xF00F)
    }

    @Test func etherTypeIsOpen() {
        #expect(EtherType(rawValue: 0x88CC).rawValue == 0x88CC)
        #expect(EtherType(rawValue: 0x88CC).description == "0x88cc")
        #expect(EtherType.ipv6.description == "ipv6")
        #expect(EtherType(0x0800) == .ipv4)
    }

    @Test func roundTripProperty() {
        var rng = SplitMix64(seed: 0xE7)
        for _ in 0..<2000 {
            let tag: VLANTag? = rng.bool() ? VLANTag(tci: rng.u16()) : nil
            var type = rng.u16()
            if type == 0x8100 || type == 0x88A8 { type = 0x0800 }
            let repr = EthernetRepr(destination: rng.mac(), source: rng.mac(), vlanTag: tag, etherType: EtherType(type))
            var buf = poisoned(repr.headerLength + Int.random(in: 0...8, using: &rng))
            buf.write { repr.emit(into: EthernetMutableHeader(unchecked: $0)) }
            let back = buf.read { b in (try? EthernetHeader(validating: b)).map(EthernetRepr.init(parsing:)) }
            #expect(back == repr)
        }
    }
}
