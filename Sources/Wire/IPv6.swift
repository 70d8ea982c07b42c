// IPv6 (RFC 8200): the fixed header, and a bounded walk over extension
// headers to the upper-layer header.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-------+---------------+---------------------------------------+
//  |Version| Traffic Class |           Flow Label                  |  0
//  +-------+---------------+-------+---------------+---------------+
//  |         Payload Length        |  Next Header  |   Hop Limit   |  4
//  +-------------------------------+---------------+---------------+
//  |                     Source Address (16)                       |  8
//  |                  Destination Address (16)                     | 24
//  +---------------------------------------------------------------+ 40
//
// Extension headers walked: Hop-by-Hop (0), Routing (43), Destination
// Options (60) — length (Hdr Ext Len + 1) × 8 — and Fragment (44), 8 bytes.

/// Where the upper-layer header of an IPv6 packet is, found by
/// `IPv6Header.upperLayer()`.
public struct IPv6UpperLayer: Hashable, Sendable {
    /// The upper-layer protocol (`.none` for No Next Header). For a
    /// non-first fragment: the Next Header of the fragment header, whose
    /// header is not in this packet.
    public var `protocol`: IPProtocol
    /// Offset in bytes of the upper-layer header from the start of the IPv6
    /// header (40 without extension headers).
    public var offset: Int
    /// The end of the packet: offset in bytes of the first byte past the
    /// payload (40 + Payload Length).
    public var end: Int
    /// True if a Fragment header was found.
    public var isFragment: Bool
    /// Fragment offset in BYTES (0 without a fragment header).
    public var fragmentOffset: Int
    /// The M flag of the fragment header.
    public var moreFragments: Bool
    /// The fragment header's identification (0 without one).
    public var fragmentIdentification: UInt32

    @inlinable
    public init(protocol proto: IPProtocol, offset: Int, end: Int, isFragment: Bool = false,
                fragmentOffset: Int = 0, moreFragments: Bool = false, fragmentIdentification: UInt32 = 0) {
        self.protocol = proto
        self.offset = offset
        self.end = end
        self.isFragment = isFragment
        self.fragmentOffset = fragmentOffset
        self.moreFragments = moreFragments
        self.fragmentIdentification = fragmentIdentification
    }

    /// True if the upper-layer header is in this packet (not a non-first
    /// fragment, not No Next Header).
    @inlinable public var hasUpperLayerHeader: Bool { fragmentOffset == 0 && self.protocol != .none }
}

/// A read-only view of an IPv6 packet (fixed header and payload).
public struct IPv6Header {
    /// The packet from the version nibble on (may extend past the payload).
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        /// Version(4) Traffic Class(8) Flow Label(20), 32 bits.
        @inlinable public static var versionClassAndFlow: Int { 0 }
        @inlinable public static var payloadLength: Int { 4 }
        @inlinable public static var nextHeader: Int { 6 }
        @inlinable public static var hopLimit: Int { 7 }
        @inlinable public static var sourceAddress: Int { 8 }
        @inlinable public static var destinationAddress: Int { 24 }
    }

    /// Length in bytes of the fixed header (40).
    @inlinable public static var headerLength: Int { 40 }
    /// The most extension headers `upperLayer()` steps over before giving up
    /// with `.unsupported`.
    @inlinable public static var maximumExtensionHeaders: Int { 8 }

    /// Checks: at least 40 bytes (`.truncated`), version 6 (`.badVersion`),
    /// 40 + Payload Length within the buffer (`.badLength`). Jumbograms
    /// (Payload Length 0 with a Jumbo option) are not recognised.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 40 else { throw .truncated }
        guard bytes.wireU8(0) >> 4 == 6 else { throw .badVersion }
        guard 40 &+ Int(bytes.wireU16(Field.payloadLength)) <= bytes.count else { throw .badLength }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Version (6).
    @inlinable public var version: UInt8 { bytes.wireU8(0) >> 4 }
    /// Traffic Class (DSCP << 2 | ECN).
    @inlinable public var trafficClass: UInt8 {
        UInt8(truncatingIfNeeded: bytes.wireU32(Field.versionClassAndFlow) >> 20)
    }
    /// Flow Label, 20 bits.
    @inlinable public var flowLabel: UInt32 { bytes.wireU32(Field.versionClassAndFlow) & 0x000F_FFFF }
    /// Payload length in bytes (everything after the fixed 40-byte header,
    /// extension headers included).
    @inlinable public var payloadLength: Int { Int(bytes.wireU16(Field.payloadLength)) }
    /// The header after the fixed header (an extension header or the upper layer).
    @inlinable public var nextHeader: IPProtocol { IPProtocol(bytes.wireU8(Field.nextHeader)) }
    @inlinable public var hopLimit: UInt8 { bytes.wireU8(Field.hopLimit) }
    @inlinable public var sourceAddress: IPv6Address { bytes.wireIPv6(Field.sourceAddress) }
    @inlinable public var destinationAddress: IPv6Address { bytes.wireIPv6(Field.destinationAddress) }
    /// Fixed header length in bytes (40).
    @inlinable public var headerLength: Int { 40 }
    /// The payload: bytes 40..<40 + payloadLength (extension headers included).
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(40..<40 &+ payloadLength) }
    /// The pseudo-header for this packet's upper-layer checksum.
    @inlinable public var pseudoHeader: IPPseudoHeader {
        .ipv6(source: sourceAddress, destination: destinationAddress)
    }

    /// Walks the extension headers (hop-by-hop, routing, destination
    /// options, fragment) to the upper-layer header. Never reads past
    /// 40 + Payload Length, and steps over at most
    /// `maximumExtensionHeaders` headers (`.unsupported` past that).
    /// Stops at a non-first fragment, whose upper-layer header is elsewhere.
    /// Throws `.truncated` if an extension header's fixed part does not fit,
    /// `.badHeaderLength` if its length runs past the payload.
    @inlinable
    public func upperLayer() throws(WireError) -> IPv6UpperLayer {
        let end = 40 &+ payloadLength
        var next = bytes.wireU8(Field.nextHeader)
        var offset = 40
        var result = IPv6UpperLayer(protocol: .none, offset: 40, end: end)
        var steps = 0
        while true {
            switch next {
            case 0, 43, 60:  // hop-by-hop, routing, destination options
                guard offset &+ 2 <= end else { throw .truncated }
                let length = (Int(bytes.wireU8(offset &+ 1)) &+ 1) &<< 3
                guard offset &+ length <= end else { throw .badHeaderLength }
                next = bytes.wireU8(offset)
                offset &+= length
            case 44:  // fragment
                guard offset &+ 8 <= end else { throw .truncated }
                let offsetAndFlags = bytes.wireU16(offset &+ 2)
                result.isFragment = true
                result.fragmentOffset = Int(offsetAndFlags & 0xFFF8)
                result.moreFragments = offsetAndFlags & 1 != 0
                result.fragmentIdentification = bytes.wireU32(offset &+ 4)
                next = bytes.wireU8(offset)
                offset &+= 8
                if result.fragmentOffset != 0 {
                    result.protocol = IPProtocol(next)
                    result.offset = offset
                    return result
                }
            default:
                result.protocol = IPProtocol(next)
                result.offset = offset
                return result
            }
            steps &+= 1
            if steps >= IPv6Header.maximumExtensionHeaders,
               IPProtocol(next).isIPv6ExtensionHeader { throw .unsupported }
        }
    }
}

/// A mutable view of an IPv6 packet. IPv6 has no header checksum, so hop
/// limit changes need no fix-up; address changes do touch the upper-layer
/// checksum (see `ParsedFrame`).
public struct IPv6MutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try IPv6Header(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: IPv6Header { IPv6Header(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = IPv6Header.Field

    @inlinable public var version: UInt8 {
        get { readOnly.version }
        nonmutating set { bytes.wireSetU8((newValue & 0x0F) << 4 | bytes.wireReadOnly.wireU8(0) & 0x0F, 0) }
    }
    @inlinable public var trafficClass: UInt8 {
        get { readOnly.trafficClass }
        nonmutating set {
            let w = bytes.wireReadOnly.wireU32(F.versionClassAndFlow) & 0xF00F_FFFF
            bytes.wireSetU32(w | UInt32(newValue) << 20, F.versionClassAndFlow)
        }
    }
    /// Flow Label, 20 bits (higher bits are ignored).
    @inlinable public var flowLabel: UInt32 {
        get { readOnly.flowLabel }
        nonmutating set {
            let w = bytes.wireReadOnly.wireU32(F.versionClassAndFlow) & 0xFFF0_0000
            bytes.wireSetU32(w | newValue & 0x000F_FFFF, F.versionClassAndFlow)
        }
    }
    /// Payload length in bytes, 0...65535.
    @inlinable public var payloadLength: Int {
        get { readOnly.payloadLength }
        nonmutating set { bytes.wireSetU16(UInt16(newValue), F.payloadLength) }
    }
    @inlinable public var nextHeader: IPProtocol {
        get { readOnly.nextHeader }
        nonmutating set { bytes.wireSetU8(newValue.rawValue, F.nextHeader) }
    }
    @inlinable public var hopLimit: UInt8 {
        get { readOnly.hopLimit }
        nonmutating set { bytes.wireSetU8(newValue, F.hopLimit) }
    }
    @inlinable public var sourceAddress: IPv6Address {
        get { readOnly.sourceAddress }
        nonmutating set { bytes.wireSetIPv6(newValue, F.sourceAddress) }
    }
    @inlinable public var destinationAddress: IPv6Address {
        get { readOnly.destinationAddress }
        nonmutating set { bytes.wireSetIPv6(newValue, F.destinationAddress) }
    }
    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        bytes.wireSlice(40..<40 &+ readOnly.payloadLength)
    }

    /// Decrements the hop limit (which must be ≥ 1) and returns the new value.
    @inlinable @discardableResult
    public func decrementHopLimit() -> UInt8 {
        let h = readOnly.hopLimit &- 1
        hopLimit = h
        return h
    }
}

/// The fixed IPv6 header as a value. Extension headers are part of the payload.
public struct IPv6Repr: Hashable, Sendable {
    public var trafficClass: UInt8
    /// Flow Label, 20 bits.
    public var flowLabel: UInt32
    /// Payload length in bytes (extension headers included).
    public var payloadLength: Int
    public var nextHeader: IPProtocol
    public var hopLimit: UInt8
    public var sourceAddress: IPv6Address
    public var destinationAddress: IPv6Address

    public init(sourceAddress: IPv6Address, destinationAddress: IPv6Address, nextHeader: IPProtocol,
                payloadLength: Int, hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel
        self.payloadLength = payloadLength
        self.nextHeader = nextHeader
        self.hopLimit = hopLimit
        self.sourceAddress = sourceAddress
        self.destinationAddress = destinationAddress
    }

    public init(parsing header: IPv6Header) {
        self.init(sourceAddress: header.sourceAddress, destinationAddress: header.destinationAddress,
                  nextHeader: header.nextHeader, payloadLength: header.payloadLength,
                  hopLimit: header.hopLimit, trafficClass: header.trafficClass, flowLabel: header.flowLabel)
    }

    /// Fixed header length in bytes (40).
    public var headerLength: Int { 40 }
    /// Header + payload in bytes.
    public var bufferLength: Int { 40 + payloadLength }

    /// Writes every field of the fixed header into the first 40 bytes.
    public func emit(into header: IPv6MutableHeader) {
        precondition(header.bytes.count >= 40, "buffer too small for the IPv6 header")
        precondition(flowLabel <= 0x000F_FFFF && payloadLength <= 0xFFFF, "flow label or payload length out of range")
        let b = header.bytes
        typealias F = IPv6Header.Field
        b.wireSetU32(0x6000_0000 | UInt32(trafficClass) << 20 | flowLabel, F.versionClassAndFlow)
        b.wireSetU16(UInt16(payloadLength), F.payloadLength)
        b.wireSetU8(nextHeader.rawValue, F.nextHeader)
        b.wireSetU8(hopLimit, F.hopLimit)
        b.wireSetIPv6(sourceAddress, F.sourceAddress)
        b.wireSetIPv6(destinationAddress, F.destinationAddress)
    }
}
