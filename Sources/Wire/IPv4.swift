// IPv4 (RFC 791).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-------+-------+-----------+---+-------------------------------+
//  |Version|  IHL  |   DSCP    |ECN|          Total Length         |  0
//  +-------+-------+-----------+---+-----+-------------------------+
//  |         Identification        |0|D|M|      Fragment Offset    |  4
//  +---------------+---------------+-----+-------------------------+
//  |  Time to Live |    Protocol   |         Header Checksum       |  8
//  +---------------+---------------+-------------------------------+
//  |                       Source Address                          | 12
//  +---------------------------------------------------------------+
//  |                    Destination Address                        | 16
//  +---------------------------------------------------------------+
//  |                    Options (IHL > 5), kept as raw bytes       | 20
//
// The view spans the buffer it was given; `payload` ends at Total Length, so
// Ethernet padding after the datagram is never taken for payload.

/// A read-only view of an IPv4 datagram (header and payload).
public struct IPv4Header {
    /// The datagram from the version byte on (may extend past Total Length).
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        /// Version (high nibble) and IHL (low nibble).
        @inlinable public static var versionAndHeaderLength: Int { 0 }
        /// DSCP (high 6 bits) and ECN (low 2 bits).
        @inlinable public static var dscpAndECN: Int { 1 }
        @inlinable public static var totalLength: Int { 2 }
        @inlinable public static var identification: Int { 4 }
        /// Flags (high 3 bits) and fragment offset (low 13 bits), 16 bits.
        @inlinable public static var flagsAndFragmentOffset: Int { 6 }
        @inlinable public static var timeToLive: Int { 8 }
        @inlinable public static var `protocol`: Int { 9 }
        @inlinable public static var headerChecksum: Int { 10 }
        @inlinable public static var sourceAddress: Int { 12 }
        @inlinable public static var destinationAddress: Int { 16 }
        @inlinable public static var options: Int { 20 }
    }

    /// Length in bytes of a header without options.
    @inlinable public static var minimumHeaderLength: Int { 20 }

    /// Checks, in this order: at least 20 bytes (`.truncated`), version 4
    /// (`.badVersion`), IHL ≥ 5 and the header within the buffer
    /// (`.badHeaderLength`), Total Length ≥ header length and within the
    /// buffer (`.badLength`). Does not verify the header checksum (see
    /// `isChecksumValid`).
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 20 else { throw .truncated }
        let vihl = bytes.wireU8(Field.versionAndHeaderLength)
        guard vihl >> 4 == 4 else { throw .badVersion }
        let headerLength = Int(vihl & 0x0F) &<< 2
        guard headerLength >= 20, headerLength <= bytes.count else { throw .badHeaderLength }
        let totalLength = Int(bytes.wireU16(Field.totalLength))
        guard totalLength >= headerLength, totalLength <= bytes.count else { throw .badLength }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Version (4).
    @inlinable public var version: UInt8 { bytes.wireU8(Field.versionAndHeaderLength) >> 4 }
    /// Header length in bytes (IHL × 4): 20...60.
    @inlinable public var headerLength: Int { Int(bytes.wireU8(Field.versionAndHeaderLength) & 0x0F) &<< 2 }
    /// Differentiated Services Code Point, 0...63.
    @inlinable public var dscp: UInt8 { bytes.wireU8(Field.dscpAndECN) >> 2 }
    /// Explicit Congestion Notification, 0...3.
    @inlinable public var ecn: UInt8 { bytes.wireU8(Field.dscpAndECN) & 0x03 }
    /// Total length of the datagram in bytes (header + payload).
    @inlinable public var totalLength: Int { Int(bytes.wireU16(Field.totalLength)) }
    @inlinable public var identification: UInt16 { bytes.wireU16(Field.identification) }
    /// The reserved flag (bit 0 of the flags; must be zero).
    @inlinable public var reservedFlag: Bool { bytes.wireU8(Field.flagsAndFragmentOffset) & 0x80 != 0 }
    /// DF: Don't Fragment.
    @inlinable public var dontFragment: Bool { bytes.wireU8(Field.flagsAndFragmentOffset) & 0x40 != 0 }
    /// MF: More Fragments.
    @inlinable public var moreFragments: Bool { bytes.wireU8(Field.flagsAndFragmentOffset) & 0x20 != 0 }
    /// Fragment offset in BYTES (the 13-bit wire field × 8).
    @inlinable public var fragmentOffset: Int { Int(bytes.wireU16(Field.flagsAndFragmentOffset) & 0x1FFF) &<< 3 }
    /// True for any fragment (MF set or a non-zero offset).
    @inlinable public var isFragment: Bool { bytes.wireU16(Field.flagsAndFragmentOffset) & 0x3FFF != 0 }
    /// True for a fragment other than the first: it carries no transport
    /// header (no ports).
    @inlinable public var isNonFirstFragment: Bool { bytes.wireU16(Field.flagsAndFragmentOffset) & 0x1FFF != 0 }
    @inlinable public var timeToLive: UInt8 { bytes.wireU8(Field.timeToLive) }
    @inlinable public var `protocol`: IPProtocol { IPProtocol(bytes.wireU8(Field.protocol)) }
    @inlinable public var headerChecksum: UInt16 { bytes.wireU16(Field.headerChecksum) }
    @inlinable public var sourceAddress: IPv4Address { bytes.wireIPv4(Field.sourceAddress) }
    @inlinable public var destinationAddress: IPv4Address { bytes.wireIPv4(Field.destinationAddress) }
    /// The options, raw (bytes 20..<headerLength; empty without options).
    @inlinable public var options: UnsafeRawBufferPointer { bytes.wireSlice(20..<headerLength) }
    /// The header, bytes 0..<headerLength.
    @inlinable public var header: UnsafeRawBufferPointer { bytes.wireSlice(0..<headerLength) }
    /// The payload: bytes headerLength..<totalLength.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(headerLength..<totalLength) }

    /// True if the header checksum verifies (the header sums to 0xFFFF).
    @inlinable public var isChecksumValid: Bool { InternetChecksum.headerSum(header) == 0xFFFF }

    /// The header checksum the header should carry (computed as if the
    /// checksum field were zero).
    @inlinable public var computedChecksum: UInt16 {
        ~InternetChecksum.add(InternetChecksum.headerSum(header), ~headerChecksum)
    }

    /// The pseudo-header for this datagram's transport checksum.
    @inlinable public var pseudoHeader: IPPseudoHeader {
        .ipv4(source: sourceAddress, destination: destinationAddress)
    }
}

/// A mutable view of an IPv4 datagram. Plain setters write only their
/// field; `fillChecksum()` recomputes the header checksum, and the
/// `rewrite…`/`decrement…` methods keep it valid incrementally (RFC 1624).
public struct IPv4MutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    /// Same checks as `IPv4Header(validating:)`.
    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try IPv4Header(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: IPv4Header { IPv4Header(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = IPv4Header.Field

    /// Version (4).
    @inlinable public var version: UInt8 {
        get { readOnly.version }
        nonmutating set {
            bytes.wireSetU8((newValue & 0x0F) << 4 | bytes.wireReadOnly.wireU8(F.versionAndHeaderLength) & 0x0F,
                            F.versionAndHeaderLength)
        }
    }
    /// Header length in bytes (IHL × 4). Must be a multiple of 4 in 20...60.
    @inlinable public var headerLength: Int {
        get { readOnly.headerLength }
        nonmutating set {
            precondition(newValue >= 20 && newValue <= 60 && newValue & 3 == 0, "IPv4 header length \(newValue)")
            bytes.wireSetU8(bytes.wireReadOnly.wireU8(F.versionAndHeaderLength) & 0xF0 | UInt8(newValue >> 2),
                            F.versionAndHeaderLength)
        }
    }
    /// DSCP, 0...63.
    @inlinable public var dscp: UInt8 {
        get { readOnly.dscp }
        nonmutating set {
            bytes.wireSetU8(newValue << 2 | bytes.wireReadOnly.wireU8(F.dscpAndECN) & 0x03, F.dscpAndECN)
        }
    }
    /// ECN, 0...3.
    @inlinable public var ecn: UInt8 {
        get { readOnly.ecn }
        nonmutating set {
            bytes.wireSetU8(bytes.wireReadOnly.wireU8(F.dscpAndECN) & 0xFC | newValue & 0x03, F.dscpAndECN)
        }
    }
    /// Total length in bytes, 0...65535.
    @inlinable public var totalLength: Int {
        get { readOnly.totalLength }
        nonmutating set { bytes.wireSetU16(UInt16(newValue), F.totalLength) }
    }
    @inlinable public var identification: UInt16 {
        get { readOnly.identification }
        nonmutating set { bytes.wireSetU16(newValue, F.identification) }
    }
    @inlinable public var reservedFlag: Bool {
        get { readOnly.reservedFlag }
        nonmutating set { setFlag(0x80, newValue) }
    }
    @inlinable public var dontFragment: Bool {
        get { readOnly.dontFragment }
        nonmutating set { setFlag(0x40, newValue) }
    }
    @inlinable public var moreFragments: Bool {
        get { readOnly.moreFragments }
        nonmutating set { setFlag(0x20, newValue) }
    }
    @inlinable func setFlag(_ bit: UInt8, _ on: Bool) {
        let b = bytes.wireReadOnly.wireU8(F.flagsAndFragmentOffset)
        bytes.wireSetU8(on ? b | bit : b & ~bit, F.flagsAndFragmentOffset)
    }
    /// Fragment offset in BYTES; must be a multiple of 8 below 65536.
    @inlinable public var fragmentOffset: Int {
        get { readOnly.fragmentOffset }
        nonmutating set {
            precondition(newValue >= 0 && newValue < 65536 && newValue & 7 == 0, "fragment offset \(newValue)")
            let flags = bytes.wireReadOnly.wireU16(F.flagsAndFragmentOffset) & 0xE000
            bytes.wireSetU16(flags | UInt16(newValue >> 3), F.flagsAndFragmentOffset)
        }
    }
    @inlinable public var isFragment: Bool { readOnly.isFragment }
    @inlinable public var isNonFirstFragment: Bool { readOnly.isNonFirstFragment }
    /// Time to live. The plain setter leaves the checksum alone; see
    /// `decrementTimeToLive()`.
    @inlinable public var timeToLive: UInt8 {
        get { readOnly.timeToLive }
        nonmutating set { bytes.wireSetU8(newValue, F.timeToLive) }
    }
    @inlinable public var `protocol`: IPProtocol {
        get { readOnly.protocol }
        nonmutating set { bytes.wireSetU8(newValue.rawValue, F.protocol) }
    }
    @inlinable public var headerChecksum: UInt16 {
        get { readOnly.headerChecksum }
        nonmutating set { bytes.wireSetU16(newValue, F.headerChecksum) }
    }
    /// The plain setter leaves the checksum alone; see `rewriteSourceAddress`.
    @inlinable public var sourceAddress: IPv4Address {
        get { readOnly.sourceAddress }
        nonmutating set { bytes.wireSetIPv4(newValue, F.sourceAddress) }
    }
    /// The plain setter leaves the checksum alone; see `rewriteDestinationAddress`.
    @inlinable public var destinationAddress: IPv4Address {
        get { readOnly.destinationAddress }
        nonmutating set { bytes.wireSetIPv4(newValue, F.destinationAddress) }
    }
    @inlinable public var options: UnsafeMutableRawBufferPointer { bytes.wireSlice(20..<readOnly.headerLength) }
    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        bytes.wireSlice(readOnly.headerLength..<readOnly.totalLength)
    }

    /// Recomputes the header checksum from scratch (RFC 1071).
    @inlinable public func fillChecksum() {
        headerChecksum = readOnly.computedChecksum
    }

    /// Decrements the TTL by one and updates the header checksum
    /// incrementally (RFC 1624). Returns the new TTL. The TTL must be ≥ 1;
    /// a router checks `timeToLive <= 1` first and answers with ICMP Time
    /// Exceeded instead.
    @inlinable @discardableResult
    public func decrementTimeToLive() -> UInt8 {
        let b = bytes.wireReadOnly
        let old = b.wireU16(F.timeToLive)  // TTL (high byte) and protocol
        let new = old &- 0x0100
        bytes.wireSetU16(new, F.timeToLive)
        bytes.wireSetU16(InternetChecksum.update(b.wireU16(F.headerChecksum), old: old, new: new), F.headerChecksum)
        return UInt8(truncatingIfNeeded: new >> 8)
    }

    /// Sets the source address and updates the header checksum
    /// incrementally. Transport checksums are NOT touched: use
    /// `ParsedFrame.rewriteIPv4Source` or fix them with the transport view.
    @inlinable public func rewriteSourceAddress(_ address: IPv4Address) {
        rewriteAddress(at: F.sourceAddress, address)
    }

    /// Sets the destination address and updates the header checksum
    /// incrementally. Transport checksums are NOT touched.
    @inlinable public func rewriteDestinationAddress(_ address: IPv4Address) {
        rewriteAddress(at: F.destinationAddress, address)
    }

    @inlinable @inline(__always)
    func rewriteAddress(at offset: Int, _ address: IPv4Address) {
        let b = bytes.wireReadOnly
        let old = b.wireU32(offset)
        bytes.wireSetU32(address.rawValue, offset)
        bytes.wireSetU16(InternetChecksum.update(b.wireU16(F.headerChecksum), old: old, new: address.rawValue),
                         F.headerChecksum)
    }
}

/// An IPv4 header as a value. `emit` writes every field and the checksum.
/// The reserved flag is not kept (emitted as zero).
public struct IPv4Repr: Hashable, Sendable {
    /// DSCP, 0...63.
    public var dscp: UInt8
    /// ECN, 0...3.
    public var ecn: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    public var moreFragments: Bool
    /// Fragment offset in BYTES (a multiple of 8).
    public var fragmentOffset: Int
    public var timeToLive: UInt8
    public var `protocol`: IPProtocol
    public var sourceAddress: IPv4Address
    public var destinationAddress: IPv4Address
    /// Options as raw bytes, padding included: a multiple of 4, at most 40.
    public var options: [UInt8]
    /// Payload length in bytes (Total Length − header length).
    public var payloadLength: Int

    public init(sourceAddress: IPv4Address, destinationAddress: IPv4Address,
                protocol proto: IPProtocol, payloadLength: Int, timeToLive: UInt8 = 64,
                identification: UInt16 = 0, dontFragment: Bool = false, moreFragments: Bool = false,
                fragmentOffset: Int = 0, dscp: UInt8 = 0, ecn: UInt8 = 0, options: [UInt8] = []) {
        self.dscp = dscp
        self.ecn = ecn
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.timeToLive = timeToLive
        self.protocol = proto
        self.sourceAddress = sourceAddress
        self.destinationAddress = destinationAddress
        self.options = options
        self.payloadLength = payloadLength
    }

    /// Reads every field of a validated header. The checksum is not checked
    /// here (see `IPv4Header.isChecksumValid`).
    public init(parsing header: IPv4Header) {
        self.init(sourceAddress: header.sourceAddress, destinationAddress: header.destinationAddress,
                  protocol: header.protocol, payloadLength: header.totalLength - header.headerLength,
                  timeToLive: header.timeToLive, identification: header.identification,
                  dontFragment: header.dontFragment, moreFragments: header.moreFragments,
                  fragmentOffset: header.fragmentOffset, dscp: header.dscp, ecn: header.ecn,
                  options: Array(header.options))
    }

    /// Header length in bytes: 20 + options.
    public var headerLength: Int { 20 + options.count }
    /// Total Length in bytes: header + payload.
    public var bufferLength: Int { headerLength + payloadLength }

    /// Writes every header field and a freshly computed header checksum into
    /// the first `headerLength` bytes. The payload is not touched.
    public func emit(into header: IPv4MutableHeader) {
        precondition(options.count <= 40 && options.count & 3 == 0, "IPv4 options must be 4-byte multiples ≤ 40")
        precondition(bufferLength <= 0xFFFF, "IPv4 datagram longer than 65535 bytes")
        precondition(dscp < 64 && ecn < 4, "DSCP or ECN out of range")
        let b = header.bytes
        precondition(b.count >= headerLength, "buffer too small for the IPv4 header")
        typealias F = IPv4Header.Field
        b.wireSetU8(0x40 | UInt8(headerLength >> 2), F.versionAndHeaderLength)
        b.wireSetU8(dscp << 2 | ecn, F.dscpAndECN)
        b.wireSetU16(UInt16(bufferLength), F.totalLength)
        b.wireSetU16(identification, F.identification)
        precondition(fragmentOffset >= 0 && fragmentOffset < 65536 && fragmentOffset & 7 == 0,
                     "fragment offset \(fragmentOffset)")
        b.wireSetU16((dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | UInt16(fragmentOffset >> 3),
                     F.flagsAndFragmentOffset)
        b.wireSetU8(timeToLive, F.timeToLive)
        b.wireSetU8(self.protocol.rawValue, F.protocol)
        b.wireSetU16(0, F.headerChecksum)
        b.wireSetIPv4(sourceAddress, F.sourceAddress)
        b.wireSetIPv4(destinationAddress, F.destinationAddress)
        for (i, byte) in options.enumerated() { b[20 + i] = byte }
        b.wireSetU16(InternetChecksum.checksum(b.wireReadOnly.wireSlice(0..<headerLength)), F.headerChecksum)
    }
}
