// Inputs wire-fuzz found that broke an oracle, kept as regression tests.

import Testing
import Wire

@Suite struct CrossCheckFuzzFindingsTests {
    /// wire-fuzz input `00 00 01 02 00 00 00 00`: an ICMPv4 echo reply with
    /// id 0, seq 0 and no data sums to 0, so its checksum must be 0xFFFF
    /// (scapy: `raw(ICMP(type=0, id=0, seq=0))` = 0000ffff00000000). Wire
    /// emitted 0x0000, which does not verify, because `computedChecksum`
    /// subtracted the old field in one's complement (0 − 0 = −0).
    @Test func allZeroICMPv4MessageGetsChecksumFFFF() throws {
        var message = bytes(hex: "0000 0102 0000 0000")
        let r = try message.read { ICMPv4Repr(parsing: try ICMPv4Header(validating: $0)) }
        #expect(r == ICMPv4Repr(message: .echoReply(identifier: 0, sequenceNumber: 0), payloadLength: 0))
        message.write { r.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
        #expect(message == bytes(hex: "0000 ffff 0000 0000"))
        message.read { #expect(ICMPv4Header(unchecked: $0).isChecksumValid) }
        // Whatever the field held before.
        for old: UInt16 in [0x0000, 0xFFFF, 0x1234] {
            var m = bytes(hex: "0000 0000 0000 0000")
            m[2] = UInt8(old >> 8)
            m[3] = UInt8(old & 0xFF)
            m.read { #expect(ICMPv4Header(unchecked: $0).computedChecksum == 0xFFFF) }
        }
        // A message whose other words sum to −0 (not all zero) keeps 0x0000.
        let negativeZero = bytes(hex: "ffff 0000 0000 0000")
        negativeZero.read { #expect(ICMPv4Header(unchecked: $0).computedChecksum == 0x0000) }
    }
}
