// IPv4 in IPv4 encapsulation (RFC 2003), as LVS TUN mode uses it: the
// director writes a new outer IPv4 header (protocol 4) in front of the
// original datagram; the real server strips it. `encapsulate` leaves the
// inner datagram as it finds it: decrementing its TTL first (RFC 2003
// §3.1, as IPVS does) is the caller's hop, not this helper's.

/// IP-in-IP encapsulation and decapsulation helpers.
public enum IPIP {
    /// Length in bytes of the outer header `encapsulate` writes (20, no options).
    @inlinable public static var outerHeaderLength: Int { 20 }

    /// Writes an outer IPv4 header in the 20 bytes of headroom in front of
    /// the inner datagram that starts at `innerOffset` in `buffer`, and
    /// returns a view of the whole encapsulated datagram (starting at
    /// `innerOffset - 20`).
    ///
    /// Per RFC 2003 §3.1 the outer TOS (DSCP/ECN) and the DF bit are copied
    /// from the inner header; TTL and identification are the caller's; the
    /// header checksum is computed. The inner datagram is validated first
    /// (`IPv4Header(validating:)` errors), and the result must fit in 65535
    /// bytes (`.badLength`). `innerOffset` must be at least 20 (headroom).
    @inlinable
    public static func encapsulate(_ buffer: UnsafeMutableRawBufferPointer, innerOffset: Int,
                                   source: IPv4Address, destination: IPv4Address,
                                   timeToLive: UInt8 = 64, identification: UInt16 = 0) throws(WireError)
        -> IPv4MutableHeader {
        precondition(innerOffset >= 20 && innerOffset <= buffer.count, "IPIP needs 20 bytes of headroom")
        let inner = try IPv4Header(validating: buffer.wireReadOnly.wireSlice(innerOffset..<buffer.count))
        let innerLength = inner.totalLength
        guard innerLength &+ 20 <= 0xFFFF else { throw .badLength }
        let dscpAndECN = inner.bytes.wireU8(IPv4Header.Field.dscpAndECN)
        let df = inner.dontFragment
        let start = innerOffset &- 20
        let outerBytes = buffer.wireSlice(start..<innerOffset &+ innerLength)
        typealias F = IPv4Header.Field
        outerBytes.wireSetU8(0x45, F.versionAndHeaderLength)
        outerBytes.wireSetU8(dscpAndECN, F.dscpAndECN)
        outerBytes.wireSetU16(UInt16(truncatingIfNeeded: innerLength &+ 20), F.totalLength)
        outerBytes.wireSetU16(identification, F.identification)
        outerBytes.wireSetU16(df ? 0x4000 : 0, F.flagsAndFragmentOffset)
        outerBytes.wireSetU8(timeToLive, F.timeToLive)
        outerBytes.wireSetU8(IPProtocol.ipip.rawValue, F.protocol)
        outerBytes.wireSetU16(0, F.headerChecksum)
        outerBytes.wireSetIPv4(source, F.sourceAddress)
        outerBytes.wireSetIPv4(destination, F.destinationAddress)
        outerBytes.wireSetU16(InternetChecksum.checksum(outerBytes.wireReadOnly.wireSlice(0..<20)), F.headerChecksum)
        return IPv4MutableHeader(unchecked: outerBytes)
    }

    /// Where the inner datagram of an IP-in-IP packet is.
    public struct Decapsulated {
        /// The validated outer header.
        public var outer: IPv4Header
        /// Offset in bytes of the inner datagram from the start of the outer header.
        public var innerOffset: Int
        /// The validated inner datagram (from its header to its Total Length).
        public var inner: IPv4Header

        @inlinable init(outer: IPv4Header, innerOffset: Int, inner: IPv4Header) {
            self.outer = outer
            self.innerOffset = innerOffset
            self.inner = inner
        }
    }

    /// Validates an IP-in-IP datagram: the outer header
    /// (`IPv4Header(validating:)` errors, `.badChecksum`), protocol 4
    /// (`.unsupported` otherwise), not a fragment (`.unsupported`: no
    /// reassembly), and the inner IPv4 datagram within the outer payload.
    @inlinable
    public static func decapsulate(_ packet: UnsafeRawBufferPointer) throws(WireError) -> Decapsulated {
        let outer = try IPv4Header(validating: packet)
        guard outer.isChecksumValid else { throw .badChecksum }
        guard outer.protocol == .ipip, !outer.isFragment else { throw .unsupported }
        let inner = try IPv4Header(validating: outer.payload)
        return Decapsulated(outer: outer, innerOffset: outer.headerLength, inner: inner)
    }
}
