import Testing
import Wire

/// A deliberately naive RFC 1071 reference: 16-bit big-endian words, 32-bit
/// accumulator, end-around carry.
func referenceChecksum(_ data: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum: UInt32 = initial
    var i = 0
    while i + 1 < data.count {
        sum += UInt32(data[i]) << 8 | UInt32(data[i + 1])
        i += 2
    }
    if i < data.count { sum += UInt32(data[i]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

@Suite struct ChecksumTests {
    @Test func rfc1071Example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        let data: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        data.read { #expect(InternetChecksum.sum($0) == 0xddf2) }
        data.read { #expect(InternetChecksum.checksum($0) == ~0xddf2) }
    }

    @Test func ipv4HeaderFromTcpdump() {
        // The header of Fixture.icmpEcho carries 0x7ad9; tcpdump accepted it.
        Fixture.icmpEcho.read(14..<34) { h in
            #expect(InternetChecksum.sum(h) == 0xFFFF)
            #expect(InternetChecksum.headerSum(h) == 0xFFFF)
        }
    }

    @Test func fullSumMatchesReferenceAtEveryLengthAndAlignment() {
        var rng = SplitMix64(seed: 1071)
        for length in 0..<200 {
            for shift in 0..<3 {
                let data = rng.bytes(length + shift)
                let initial = rng.u16()
                let body = Array(data[shift...])
                data.read(shift..<data.count) { b in
                    #expect(InternetChecksum.checksum(b, initial: initial) == referenceChecksum(body, initial: UInt32(initial)),
                            "length \(length) shift \(shift)")
                }
            }
        }
        // All-ones data: the carries pile up.
        let ones = [UInt8](repeating: 0xFF, count: 4096)
        ones.read { #expect(InternetChecksum.checksum($0) == referenceChecksum(ones)) }
        ones.read(0..<20) { #expect(InternetChecksum.headerSum($0) == ~referenceChecksum(Array(ones[0..<20]))) }
    }

    @Test func pseudoHeaders() {
        let src = IPv4Address(10, 0, 0, 1), dst = IPv4Address(10, 0, 0, 100)
        let v4: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 100, 0, 6, 0, 40]
        #expect(InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: .tcp, length: 40)
                == ~referenceChecksum(v4))
        let s6 = IPv6Address("2001:db8::1")!, d6 = IPv6Address("fe80::ffff:1:2")!
        let v6 = s6.bytes + d6.bytes + [0, 1, 0, 4, 0, 0, 0, 58]
        #expect(InternetChecksum.pseudoHeaderSum(source: s6, destination: d6, nextHeader: .icmpv6, length: 65540)
                == ~referenceChecksum(v6))
    }

    @Test func incrementalMatchesFullForRandomWordChanges() {
        var rng = SplitMix64(seed: 1624)
        for _ in 0..<20_000 {
            var data = rng.bytes(2 * Int.random(in: 3...40, using: &rng))
            // Checksum stored at word 0, as in a real header; word 1 is a
            // fixed non-zero word, like IPv4's version/IHL or the protocol
            // in a pseudo-header. (Over all-zero data the full computation
            // gives 0xFFFF and eqn. 3 gives 0x0000 — the two zeros of one's
            // complement; no real header is all zero.)
            data[0] = 0; data[1] = 0
            data[2] = 0x45
            let c = referenceChecksum(data)
            data[0] = UInt8(c >> 8); data[1] = UInt8(c & 0xFF)
            // Change one 16-bit word (not the checksum) or a 32-bit value.
            let w = 2 * Int.random(in: 2..<(data.count / 2), using: &rng)
            if w + 4 <= data.count && rng.bool() {
                let old = UInt32(data[w]) << 24 | UInt32(data[w + 1]) << 16 | UInt32(data[w + 2]) << 8 | UInt32(data[w + 3])
                let new = rng.bool() ? rng.u32() : [0, 0xFFFF_FFFF, ~old][Int.random(in: 0..<3, using: &rng)]
                data[w] = UInt8(new >> 24); data[w + 1] = UInt8((new >> 16) & 0xFF)
                data[w + 2] = UInt8((new >> 8) & 0xFF); data[w + 3] = UInt8(new & 0xFF)
                let updated = InternetChecksum.update(c, old: old, new: new)
                data[0] = 0; data[1] = 0
                #expect(updated == referenceChecksum(data))
            } else {
                let old = UInt16(data[w]) << 8 | UInt16(data[w + 1])
                let new = rng.bool() ? rng.u16() : [0, 0xFFFF, ~old][Int.random(in: 0..<3, using: &rng)]
                data[w] = UInt8(new >> 8); data[w + 1] = UInt8(new & 0xFF)
                let updated = InternetChecksum.update(c, old: old, new: new)
                data[0] = 0; data[1] = 0
                #expect(updated == referenceChecksum(data))
            }
        }
    }

    @Test func udpZeroRule() {
        // 0 means "no checksum" and stays 0 whatever changes.
        #expect(InternetChecksum.updateUDP(0, old: UInt16(1234), new: 80) == 0)
        #expect(InternetChecksum.updateUDP(0, old: UInt32(1), new: 2) == 0)
        // A result of 0 is sent as 0xFFFF: find a change whose plain update gives 0.
        let c: UInt16 = 0x1234
        // ~(~c + ~old + new) == 0  ⇔  ~c + ~old + new == 0xFFFF; with old = 0: new = c.
        #expect(InternetChecksum.update(c, old: UInt16(0), new: c) == 0)
        #expect(InternetChecksum.updateUDP(c, old: UInt16(0), new: c) == 0xFFFF)
    }
}
