// BGP-4 messages: known bytes, round trips, framing over a byte stream, and
// malformed input → the NOTIFICATION RFC 4271 §6 prescribes.
//
//   swift test --skip-build --filter BGP

import Testing
@testable import Wire

private let marker = [UInt8](repeating: 0xFF, count: 16)

/// Header + body with the right length.
private func message(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
    let n = 19 + body.count
    return marker + [UInt8(n >> 8), UInt8(n & 0xFF), type] + body
}

private func notification(_ bytes: [UInt8], _ options: BGPCodecOptions = .fourOctet) -> BGPNotification? {
    do {
        _ = try BGPMessage.decode(bytes, options)
        return nil
    } catch {
        return error
    }
}

private func updateBody(withdrawn: [UInt8] = [], attributes: [UInt8], nlri: [UInt8]) -> [UInt8] {
    [UInt8(withdrawn.count >> 8), UInt8(withdrawn.count & 0xFF)] + withdrawn
        + [UInt8(attributes.count >> 8), UInt8(attributes.count & 0xFF)] + attributes + nlri
}

private func containsRun(_ b: [UInt8], _ run: [UInt8]) -> Bool {
    b.count >= run.count && (0...(b.count - run.count)).contains { Array(b[$0..<($0 + run.count)]) == run }
}

private let origin: [UInt8] = [0x40, 1, 1, 0]
private let asPath4: [UInt8] = [0x40, 2, 6, 2, 1, 0, 0, 0xFD, 0xE9]
private let nextHop: [UInt8] = [0x40, 3, 4, 10, 0, 0, 1]

@Suite struct BGPCodecTests {
    @Test func keepaliveKnownBytes() throws {
        let bytes = BGPMessage.keepalive.encode()
        #expect(bytes == marker + [0x00, 0x13, 0x04])
        #expect(try BGPMessage.decode(bytes) == .keepalive)
    }

    @Test func openKnownBytes() throws {
        let open = BGPOpen(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(10, 0, 0, 1))
        let expected = marker + bytes(hex: """
            0031 01 04 fde9 005a 0a000001 14
            02 06 01 04 0001 00 01
            02 02 02 00
            02 06 41 04 0000fde9
            """)
        #expect(BGPMessage.open(open).encode() == expected)
        guard case .open(let back) = try BGPMessage.decode(expected) else { Issue.record("not an OPEN"); return }
        #expect(back == open)
        #expect(back.autonomousSystem == 65001)
        #expect(back.supportsFourOctetAS)
        #expect(back.capabilities.first?.multiprotocolFamily?.afi == 1 && back.capabilities.first?.multiprotocolFamily?.safi == 1)
    }

    @Test func openOfAFourOctetASCarriesASTrans() throws {
        let open = BGPOpen(asn: 4_200_000_001, holdTime: 3, bgpIdentifier: IPv4Address(192, 0, 2, 1))
        let bytes = BGPMessage.open(open).encode()
        #expect(bytes[20] == 0x5B && bytes[21] == 0xA0)  // 23456
        guard case .open(let back) = try BGPMessage.decode(bytes) else { Issue.record("not an OPEN"); return }
        #expect(back.myAS == 23456)
        #expect(back.autonomousSystem == 4_200_000_001)
        try back.validate(expectedPeerAS: 4_200_000_001, localIdentifier: IPv4Address(192, 0, 2, 2), localAS: 65000)
    }

    @Test func updateKnownBytes() throws {
        let bytes = message(2, updateBody(attributes: origin + asPath4 + nextHop, nlri: [16, 10, 1, 24, 192, 168, 1]))
        let update = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65001])],
                                                             nextHop: IPv4Address(10, 0, 0, 1)),
                               nlri: [IPv4Prefix("10.1.0.0/16")!, IPv4Prefix("192.168.1.0/24")!])
        #expect(try BGPMessage.decode(bytes) == .update(update))
        #expect(BGPMessage.update(update).encode() == bytes)
        #expect(bytes.count == 50)
    }

    @Test func notificationRoundTrip() throws {
        let n = BGPNotification.badMessageLength(4097)
        let bytes = BGPMessage.notification(n).encode()
        #expect(bytes == marker + [0, 23, 3, 1, 2, 0x10, 0x01])
        #expect(try BGPMessage.decode(bytes) == .notification(n))
    }

    @Test func updatesRoundTripInBothASWidths() throws {
        var rng = SplitMix64(seed: 179)
        for round in 0..<300 {
            var a = BGPPathAttributes(origin: BGPOrigin(rawValue: UInt8(rng.next() % 3)),
                                      asPath: (0..<Int(rng.next() % 3)).map { _ in
                                          BGPASPathSegment(type: rng.bool() ? 2 : 1,
                                                           asns: (0..<Int(1 + rng.next() % 4)).map { _ in rng.bool() ? UInt32(rng.next() % 65535 + 1) : rng.u32() | 0x10000 })
                                      },
                                      nextHop: IPv4Address(10, rng.byte(), rng.byte(), 1))
            if rng.bool() { a.multiExitDisc = rng.u32() }
            if rng.bool() { a.localPref = rng.u32() }
            if rng.bool() { a.atomicAggregate = true }
            if rng.bool() { a.aggregator = (rng.bool() ? 64512 : 4_200_000_000, IPv4Address(1, 2, 3, 4)) }
            if rng.bool() { a.others = [BGPRawAttribute(flags: 0xC0, type: 200, value: rng.bytes(Int(rng.next() % 300)))] }
            let nlri = (0..<Int(rng.next() % 5)).map { _ in IPv4Prefix(address: rng.ipv4(), length: Int(rng.next() % 33)).canonical }
            let withdrawn = (0..<Int(rng.next() % 3)).map { _ in IPv4Prefix(address: rng.ipv4(), length: Int(rng.next() % 33)).canonical }
            let u = BGPUpdate(withdrawn: withdrawn, attributes: a, nlri: nlri)
            // RFC 6793 §4.2.3: towards a 2-octet speaker, an AGGREGATOR with a
            // 2-octet AS other than AS_TRANS says an old speaker aggregated
            // after the AS4_PATH was made: the AS4_PATH is ignored, so such
            // an update cannot come back whole from 2-octet bytes.
            let big = (a.asPath ?? []).contains { $0.asns.contains { $0 > 0xFFFF } }
            let staleAS4 = big && (a.aggregator.map { $0.asn <= 0xFFFF } ?? false)
            for options in [BGPCodecOptions.fourOctet, .twoOctet] where options.fourOctetAS || !staleAS4 {
                let bytes = BGPMessage.update(u).encode(options)
                let back = try BGPMessage.decode(bytes, options)
                #expect(back == .update(u), "round \(round) \(options)")
            }
            if staleAS4 {
                guard case .update(let back) = try BGPMessage.decode(BGPMessage.update(u).encode(.twoOctet), .twoOctet) else { continue }
                #expect(back.attributes.asPath!.allSatisfy { $0.asns.allSatisfy { $0 <= 0xFFFF } }, "round \(round)")
            }
        }
    }

    @Test func twoOctetSessionUsesASTransAndAS4Path() throws {
        let a = BGPPathAttributes(origin: .igp, asPath: [.sequence([65001, 4_200_000_000])], nextHop: IPv4Address(10, 0, 0, 1))
        let bytes = BGPMessage.update(BGPUpdate(attributes: a, nlri: [IPv4Prefix("10.9.0.0/16")!])).encode(.twoOctet)
        // AS_PATH: one sequence of 2 two-octet numbers, the second AS_TRANS.
        let asPath: [UInt8] = [0x40, 2, 6, 2, 2, 0xFD, 0xE9, 0x5B, 0xA0]
        #expect(containsRun(bytes, asPath))
        // AS4_PATH (17), optional transitive, the real numbers.
        let as4Path: [UInt8] = [0xC0, 17, 10, 2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]
        #expect(containsRun(bytes, as4Path))
        guard case .update(let back) = try BGPMessage.decode(bytes, .twoOctet) else { Issue.record("not an UPDATE"); return }
        #expect(back.attributes.asPath == [.sequence([65001, 4_200_000_000])])
        // The same bytes read as 4-octet are nonsense: an AS_PATH of 6 bytes
        // cannot hold 2 four-octet numbers.
        #expect(notification(bytes, .fourOctet) == .malformedASPath())
    }

    @Test func unknownOptionalTransitiveAttributeIsKept() throws {
        let unknown: [UInt8] = [0xE0, 99, 3, 1, 2, 3]  // optional, transitive, partial
        let bytes = message(2, updateBody(attributes: origin + asPath4 + nextHop + unknown, nlri: [8, 10]))
        guard case .update(let u) = try BGPMessage.decode(bytes) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.others == [BGPRawAttribute(flags: 0xE0, type: 99, value: [1, 2, 3])])
        #expect(BGPMessage.update(u).encode() == bytes)
    }

    @Test func extendedLengthAttributeIsRead() throws {
        let value = [UInt8](repeating: 7, count: 300)
        let long: [UInt8] = [0xD0, 120, 0x01, 0x2C] + value
        let bytes = message(2, updateBody(attributes: origin + asPath4 + nextHop + long, nlri: [32, 10, 0, 0, 9]))
        guard case .update(let u) = try BGPMessage.decode(bytes) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.others.first?.value == value)
        #expect(BGPMessage.update(u).encode() == bytes)
    }

    @Test func endOfRIBIsAnEmptyUpdate() throws {
        guard case .update(let u) = try BGPMessage.decode(message(2, [0, 0, 0, 0])) else { Issue.record("not an UPDATE"); return }
        #expect(u.isEndOfRIB)
    }

    @Test func largeUpdatesSplitUnder4096Bytes() throws {
        let nlri = (0..<2000).map { IPv4Prefix(address: IPv4Address(rawValue: 0x0A00_0000 | UInt32($0) << 8), length: 24) }
        let u = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [], nextHop: IPv4Address(10, 0, 0, 1)), nlri: nlri)
        let parts = u.split(.fourOctet)
        #expect(parts.count > 1)
        #expect(parts.flatMap(\.nlri) == nlri)
        for p in parts { #expect(BGPMessage.update(p).encode().count <= 4096) }
    }
}

@Suite struct BGPFramingTests {
    @Test func messagesSplitAnywhereAndSeveralInOneRead() throws {
        let open = BGPMessage.open(BGPOpen(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(10, 0, 0, 1)))
        let update = BGPMessage.update(BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65001])], nextHop: IPv4Address(10, 0, 0, 1)),
                                                 nlri: [IPv4Prefix("10.1.0.0/16")!]))
        let stream = open.encode() + BGPMessage.keepalive.encode() + update.encode() + BGPMessage.keepalive.encode()
        for cut in [1, 2, 7, 19, 20, 64, stream.count] {
            var framer = BGPFramer()
            var got: [BGPMessage] = []
            var i = 0
            while i < stream.count {
                framer.append(stream[i..<min(i + cut, stream.count)])
                i += cut
                while let (type, body) = try framer.next() { got.append(try BGPMessage.decode(type: type, body: body)) }
            }
            #expect(got == [open, .keepalive, update, .keepalive], "cut \(cut)")
            #expect(framer.buffered == 0)
        }
    }

    @Test func aPartialHeaderWaits() throws {
        var framer = BGPFramer()
        framer.append(marker + [0])
        #expect(try framer.next() == nil)
        framer.append([19, 4])
        #expect(try framer.next()?.type == 4)
    }
}

/// RFC 4271 §6: each malformed input and the NOTIFICATION it must produce.
@Suite struct BGPMalformedTests {
    @Test func messageHeaderErrors() {
        var badMarker = BGPMessage.keepalive.encode()
        badMarker[3] = 0xFE
        #expect(notification(badMarker) == BGPNotification(code: 1, subcode: 1))
        #expect(notification(marker + [0, 18, 4]) == BGPNotification(code: 1, subcode: 2, data: [0, 18]))
        #expect(notification(marker + [0x10, 0x01, 2]) == BGPNotification(code: 1, subcode: 2, data: [0x10, 0x01]))
        #expect(notification(message(9, [])) == BGPNotification(code: 1, subcode: 3, data: [9]))
        #expect(notification(message(0, [])) == BGPNotification(code: 1, subcode: 3, data: [0]))
        // Per-type lengths: KEEPALIVE is exactly 19, OPEN ≥ 29, UPDATE ≥ 23, NOTIFICATION ≥ 21.
        #expect(notification(message(4, [0])) == BGPNotification(code: 1, subcode: 2, data: [0, 20]))
        #expect(notification(message(1, [4, 0, 1])) == BGPNotification(code: 1, subcode: 2, data: [0, 22]))
        #expect(notification(message(2, [0, 0])) == BGPNotification(code: 1, subcode: 2, data: [0, 21]))
        #expect(notification(message(3, [6])) == BGPNotification(code: 1, subcode: 2, data: [0, 20]))
    }

    private func openBody(version: UInt8 = 4, myAS: UInt16 = 65001, hold: UInt16 = 90, id: [UInt8] = [10, 0, 0, 1],
                          params: [UInt8] = [2, 6, 65, 4, 0, 0, 0xFD, 0xE9]) -> [UInt8] {
        [version, UInt8(myAS >> 8), UInt8(myAS & 0xFF), UInt8(hold >> 8), UInt8(hold & 0xFF)] + id + [UInt8(params.count)] + params
    }

    private func openError(_ body: [UInt8], peerAS: UInt32 = 65001) -> BGPNotification? {
        do {
            guard case .open(let o) = try BGPMessage.decode(message(1, body)) else { return nil }
            try o.validate(expectedPeerAS: peerAS, localIdentifier: IPv4Address(10, 0, 0, 2), localAS: 65002)
            return nil
        } catch {
            return error
        }
    }

    @Test func openMessageErrors() {
        #expect(openError(openBody()) == nil)
        #expect(openError(openBody(version: 3)) == BGPNotification(code: 2, subcode: 1, data: [0, 4]))
        #expect(openError(openBody(), peerAS: 65003) == BGPNotification(code: 2, subcode: 2))
        // My AS disagrees with capability 65 (and is not AS_TRANS).
        #expect(openError(openBody(myAS: 65005)) == BGPNotification(code: 2, subcode: 2))
        #expect(openError(openBody(hold: 1)) == BGPNotification(code: 2, subcode: 6))
        #expect(openError(openBody(hold: 2)) == BGPNotification(code: 2, subcode: 6))
        #expect(openError(openBody(hold: 0)) == nil)
        #expect(openError(openBody(hold: 3)) == nil)
        #expect(openError(openBody(id: [0, 0, 0, 0])) == BGPNotification(code: 2, subcode: 3))
        #expect(openError(openBody(id: [224, 0, 0, 5])) == BGPNotification(code: 2, subcode: 3))
        // Optional parameter type 1 (authentication, deprecated) → 2/4.
        #expect(openError(openBody(params: [1, 1, 0])) == BGPNotification(code: 2, subcode: 4))
        // A capability running past its parameter → 2/0.
        #expect(openError(openBody(params: [2, 3, 65, 4, 0])) == BGPNotification(code: 2, subcode: 0))
        // Optional Parameters Length past the message.
        var body = openBody()
        body[9] = 40
        #expect(openError(body) == BGPNotification(code: 2, subcode: 0))
        // Unknown capabilities are tolerated.
        #expect(openError(openBody(params: [2, 6, 65, 4, 0, 0, 0xFD, 0xE9, 2, 4, 64, 2, 0x80, 0x78])) == nil)
    }

    @Test func updateMessageErrors() {
        func check(_ attributes: [UInt8], _ nlri: [UInt8] = [8, 10], withdrawn: [UInt8] = []) -> BGPNotification? {
            notification(message(2, updateBody(withdrawn: withdrawn, attributes: attributes, nlri: nlri)))
        }
        #expect(check(origin + asPath4 + nextHop) == nil)
        // Withdrawn Routes Length past the message → Malformed Attribute List.
        #expect(notification(message(2, [0, 50, 0, 0])) == BGPNotification(code: 3, subcode: 1))
        // Total Path Attribute Length past the message.
        #expect(notification(message(2, [0, 0, 0, 50] + origin)) == BGPNotification(code: 3, subcode: 1))
        // An attribute twice.
        #expect(check(origin + origin + asPath4 + nextHop) == BGPNotification(code: 3, subcode: 1))
        // An attribute running past the attribute list.
        #expect(check(origin + asPath4 + [0x40, 3, 9, 10, 0, 0, 1]) == BGPNotification(code: 3, subcode: 1))
        // Unrecognized well-known (optional bit clear) → 3/2, data the attribute.
        #expect(check(origin + asPath4 + nextHop + [0x40, 99, 1, 7]) == BGPNotification(code: 3, subcode: 2, data: [0x40, 99, 1, 7]))
        // Missing well-known attributes → 3/3, data the type code.
        #expect(check(asPath4 + nextHop) == BGPNotification(code: 3, subcode: 3, data: [1]))
        #expect(check(origin + nextHop) == BGPNotification(code: 3, subcode: 3, data: [2]))
        #expect(check(origin + asPath4) == BGPNotification(code: 3, subcode: 3, data: [3]))
        // ... but not without NLRI (a pure withdrawal).
        #expect(check([], [], withdrawn: [8, 10]) == nil)
        // Flags that conflict with the type → 3/4.
        #expect(check([0xC0, 1, 1, 0] + asPath4 + nextHop) == BGPNotification(code: 3, subcode: 4, data: [0xC0, 1, 1, 0]))
        #expect(check(origin + asPath4 + nextHop + [0x40, 4, 4, 0, 0, 0, 1]) == BGPNotification(code: 3, subcode: 4, data: [0x40, 4, 4, 0, 0, 0, 1]))
        // Lengths that conflict with the type → 3/5.
        #expect(check([0x40, 1, 2, 0, 0] + asPath4 + nextHop) == BGPNotification(code: 3, subcode: 5, data: [0x40, 1, 2, 0, 0]))
        #expect(check(origin + asPath4 + [0x40, 3, 3, 10, 0, 0]) == BGPNotification(code: 3, subcode: 5, data: [0x40, 3, 3, 10, 0, 0]))
        #expect(check(origin + asPath4 + nextHop + [0x40, 5, 2, 0, 100]) == BGPNotification(code: 3, subcode: 5, data: [0x40, 5, 2, 0, 100]))
        // ORIGIN 3 → 3/6.
        #expect(check([0x40, 1, 1, 3] + asPath4 + nextHop) == BGPNotification(code: 3, subcode: 6, data: [0x40, 1, 1, 3]))
        // NEXT_HOP 0.0.0.0 or multicast → 3/8.
        #expect(check(origin + asPath4 + [0x40, 3, 4, 0, 0, 0, 0]) == BGPNotification(code: 3, subcode: 8, data: [0x40, 3, 4, 0, 0, 0, 0]))
        #expect(check(origin + asPath4 + [0x40, 3, 4, 239, 1, 1, 1]) == BGPNotification(code: 3, subcode: 8, data: [0x40, 3, 4, 239, 1, 1, 1]))
        // Prefix length 33, or octets past the field → 3/10.
        #expect(check(origin + asPath4 + nextHop, [33, 10, 0, 0, 0, 0]) == BGPNotification(code: 3, subcode: 10))
        #expect(check(origin + asPath4 + nextHop, [24, 10, 0]) == BGPNotification(code: 3, subcode: 10))
        #expect(check([], [], withdrawn: [40, 1, 2, 3, 4, 5]) == BGPNotification(code: 3, subcode: 10))
        // AS_PATH segments: overrun, zero length, unknown type → 3/11.
        #expect(check(origin + [0x40, 2, 4, 2, 1, 0, 0] + nextHop) == BGPNotification(code: 3, subcode: 11))
        #expect(check(origin + [0x40, 2, 2, 2, 0] + nextHop) == BGPNotification(code: 3, subcode: 11))
        #expect(check(origin + [0x40, 2, 6, 9, 1, 0, 0, 0xFD, 0xE9] + nextHop) == BGPNotification(code: 3, subcode: 11))
    }

    /// Random damage to valid messages never traps: every result is a message
    /// or a NOTIFICATION with a code the RFC lists.
    @Test func mutatedMessagesNeverTrap() {
        var rng = SplitMix64(seed: 4271)
        let seeds: [[UInt8]] = [
            BGPMessage.open(BGPOpen(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(10, 0, 0, 1))).encode(),
            message(2, updateBody(attributes: origin + asPath4 + nextHop + [0xC0, 99, 2, 1, 2], nlri: [16, 10, 1, 24, 192, 168, 1])),
            BGPMessage.notification(.ceaseError(subcode: 2)).encode(),
        ]
        for i in 0..<20000 {
            var b = seeds[i % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = 16 + Int(rng.next() % UInt64(b.count - 16))
                switch rng.next() % 3 {
                case 0: b[at] = rng.byte()
                case 1: b.insert(rng.byte(), at: at)
                default: if b.count > 20 { b.remove(at: at) }
                }
            }
            for options in [BGPCodecOptions.fourOctet, .twoOctet] {
                if let n = notification(b, options) { #expect((1...3).contains(n.code), "\(n)") }
            }
        }
    }
}
