// TCP (RFC 9293).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-------------------------------+-------------------------------+
//  |          Source Port          |       Destination Port        |  0
//  +-------------------------------+-------------------------------+
//  |                        Sequence Number                        |  4
//  +---------------------------------------------------------------+
//  |                    Acknowledgment Number                      |  8
//  +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
//  | DOff  | Rsrvd |C|E|U|A|P|R|S|F|            Window             | 12
//  +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
//  |           Checksum            |         Urgent Pointer        | 16
//  +-------------------------------+-------------------------------+
//  |                 Options (DOff > 5), kept as raw bytes         | 20
//
// TCP has no length field: the view's buffer must end where the segment
// ends (take it from `IPv4Header.payload`), since the checksum covers it.

/// TCP control bits (RFC 9293 §3.1, with CWR/ECE from RFC 3168).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }

    /// tcpdump style, in tcpdump's order F S R P . U E W (`.` is ACK, `E`
    /// ECE, `W` CWR): `S`, `S.`, `P.`, `FP.`; `none` when empty.
    public var description: String {
        var s = ""
        for (flag, letter) in [(TCPFlags.fin, "F"), (.syn, "S"), (.rst, "R"), (.psh, "P"),
                               (.ack, "."), (.urg, "U"), (.ece, "E"), (.cwr, "W")] where contains(flag) {
            s += letter
        }
        return s.isEmpty ? "none" : s
    }
}

/// A read-only view of a TCP segment (header and payload).
public struct TCPHeader {
    /// The segment, from the source port to the end of the segment.
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        @inlinable public static var sourcePort: Int { 0 }
        @inlinable public static var destinationPort: Int { 2 }
        @inlinable public static var sequenceNumber: Int { 4 }
        @inlinable public static var acknowledgmentNumber: Int { 8 }
        /// Data offset (high nibble) and reserved bits (low nibble).
        @inlinable public static var dataOffset: Int { 12 }
        @inlinable public static var flags: Int { 13 }
        @inlinable public static var window: Int { 14 }
        @inlinable public static var checksum: Int { 16 }
        @inlinable public static var urgentPointer: Int { 18 }
        @inlinable public static var options: Int { 20 }
    }

    /// Length in bytes of a header without options (20).
    @inlinable public static var minimumHeaderLength: Int { 20 }

    /// Checks: at least 20 bytes (`.truncated`); data offset ≥ 5 words and
    /// the header within the buffer (`.badHeaderLength`). Does not verify
    /// the checksum.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 20 else { throw .truncated }
        let headerLength = Int(bytes.wireU8(Field.dataOffset) >> 4) &<< 2
        guard headerLength >= 20, headerLength <= bytes.count else { throw .badHeaderLength }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var sourcePort: UInt16 { bytes.wireU16(Field.sourcePort) }
    @inlinable public var destinationPort: UInt16 { bytes.wireU16(Field.destinationPort) }
    @inlinable public var sequenceNumber: UInt32 { bytes.wireU32(Field.sequenceNumber) }
    @inlinable public var acknowledgmentNumber: UInt32 { bytes.wireU32(Field.acknowledgmentNumber) }
    /// Header length in BYTES (the Data Offset field × 4): 20...60.
    @inlinable public var headerLength: Int { Int(bytes.wireU8(Field.dataOffset) >> 4) &<< 2 }
    /// The 4 reserved bits (must be zero).
    @inlinable public var reserved: UInt8 { bytes.wireU8(Field.dataOffset) & 0x0F }
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes.wireU8(Field.flags)) }
    @inlinable public var window: UInt16 { bytes.wireU16(Field.window) }
    @inlinable public var checksum: UInt16 { bytes.wireU16(Field.checksum) }
    @inlinable public var urgentPointer: UInt16 { bytes.wireU16(Field.urgentPointer) }
    /// The options, raw (bytes 20..<headerLength).
    @inlinable public var options: UnsafeRawBufferPointer { bytes.wireSlice(20..<headerLength) }
    /// The payload: bytes headerLength..<end of buffer.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(headerLength..<bytes.count) }

    /// The checksum this segment should carry under `pseudoHeader`
    /// (computed as if the field were zero).
    @inlinable
    public func computedChecksum(pseudoHeader: IPPseudoHeader) -> UInt16 {
        let initial = pseudoHeader.sum(protocol: .tcp, length: bytes.count)
        return ~InternetChecksum.add(InternetChecksum.sum(bytes, initial: initial), ~checksum)
    }

    /// True if the checksum verifies.
    @inlinable
    public func isChecksumValid(pseudoHeader: IPPseudoHeader) -> Bool {
        InternetChecksum.sum(bytes, initial: pseudoHeader.sum(protocol: .tcp, length: bytes.count)) == 0xFFFF
    }
}

/// A mutable view of a TCP segment.
public struct TCPMutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try TCPHeader(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: TCPHeader { TCPHeader(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = TCPHeader.Field

    /// The plain setter leaves the checksum alone; see `rewriteSourcePort`.
    @inlinable public var sourcePort: UInt16 {
        get { readOnly.sourcePort }
        nonmutating set { bytes.wireSetU16(newValue, F.sourcePort) }
    }
    /// The plain setter leaves the checksum alone; see `rewriteDestinationPort`.
    @inlinable public var destinationPort: UInt16 {
        get { readOnly.destinationPort }
        nonmutating set { bytes.wireSetU16(newValue, F.destinationPort) }
    }
    @inlinable public var sequenceNumber: UInt32 {
        get { readOnly.sequenceNumber }
        nonmutating set { bytes.wireSetU32(newValue, F.sequenceNumber) }
    }
    @inlinable public var acknowledgmentNumber: UInt32 {
        get { readOnly.acknowledgmentNumber }
        nonmutating set { bytes.wireSetU32(newValue, F.acknowledgmentNumber) }
    }
    /// Header length in BYTES; a multiple of 4 in 20...60.
    @inlinable public var headerLength: Int {
        get { readOnly.headerLength }
        nonmutating set {
            precondition(newValue >= 20 && newValue <= 60 && newValue & 3 == 0, "TCP header length \(newValue)")
            bytes.wireSetU8(UInt8(newValue >> 2) << 4 | readOnly.reserved, F.dataOffset)
        }
    }
    @inlinable public var reserved: UInt8 {
        get { readOnly.reserved }
        nonmutating set {
            bytes.wireSetU8(bytes.wireReadOnly.wireU8(F.dataOffset) & 0xF0 | newValue & 0x0F, F.dataOffset)
        }
    }
    @inlinable public var flags: TCPFlags {
        get { readOnly.flags }
        nonmutating set { bytes.wireSetU8(newValue.rawValue, F.flags) }
    }
    @inlinable public var window: UInt16 {
        get { readOnly.window }
        nonmutating set { bytes.wireSetU16(newValue, F.window) }
    }
    @inlinable public var checksum: UInt16 {
        get { readOnly.checksum }
        nonmutating set { bytes.wireSetU16(newValue, F.checksum) }
    }
    @inlinable public var urgentPointer: UInt16 {
        get { readOnly.urgentPointer }
        nonmutating set { bytes.wireSetU16(newValue, F.urgentPointer) }
    }
    @inlinable public var options: UnsafeMutableRawBufferPointer { bytes.wireSlice(20..<readOnly.headerLength) }
    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        bytes.wireSlice(readOnly.headerLength..<bytes.count)
    }

    /// Recomputes the checksum from scratch over the whole buffer and
    /// `pseudoHeader`.
    @inlinable public func fillChecksum(pseudoHeader: IPPseudoHeader) {
        checksum = readOnly.computedChecksum(pseudoHeader: pseudoHeader)
    }

    /// Sets the source port, updating the checksum incrementally.
    @inlinable public func rewriteSourcePort(_ port: UInt16) {
        let old = readOnly.sourcePort
        sourcePort = port
        checksum = InternetChecksum.update(readOnly.checksum, old: old, new: port)
    }

    /// Sets the destination port, updating the checksum incrementally.
    @inlinable public func rewriteDestinationPort(_ port: UInt16) {
        let old = readOnly.destinationPort
        destinationPort = port
        checksum = InternetChecksum.update(readOnly.checksum, old: old, new: port)
    }

    /// Updates the checksum for a pseudo-header IPv4 address that changed
    /// from `old` to `new` (call it when rewriting the IP header).
    @inlinable public func adjustChecksum(addressChangedFrom old: IPv4Address, to new: IPv4Address) {
        checksum = InternetChecksum.update(readOnly.checksum, old: old.rawValue, new: new.rawValue)
    }

    /// Updates the checksum for a pseudo-header IPv6 address change.
    @inlinable public func adjustChecksum(addressChangedFrom old: IPv6Address, to new: IPv6Address) {
        checksum = InternetChecksum.update(readOnly.checksum, old: old, new: new)
    }
}

/// A TCP header as a value. The reserved bits are not kept (emitted as zero).
public struct TCPRepr: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    public var urgentPointer: UInt16
    /// Options as raw bytes, padding included: a multiple of 4, at most 40.
    public var options: [UInt8]
    /// Payload length in bytes.
    public var payloadLength: Int

    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32 = 0,
                acknowledgmentNumber: UInt32 = 0, flags: TCPFlags, window: UInt16 = 65535,
                urgentPointer: UInt16 = 0, options: [UInt8] = [], payloadLength: Int = 0) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.options = options
        self.payloadLength = payloadLength
    }

    public init(parsing header: TCPHeader) {
        self.init(sourcePort: header.sourcePort, destinationPort: header.destinationPort,
                  sequenceNumber: header.sequenceNumber, acknowledgmentNumber: header.acknowledgmentNumber,
                  flags: header.flags, window: header.window, urgentPointer: header.urgentPointer,
                  options: Array(header.options), payloadLength: header.bytes.count - header.headerLength)
    }

    /// Header length in bytes: 20 + options.
    public var headerLength: Int { 20 + options.count }
    /// Segment length in bytes: header + payload.
    public var bufferLength: Int { headerLength + payloadLength }

    /// Writes every header field. With a pseudo-header, the checksum is
    /// computed over the header and the `payloadLength` bytes that must
    /// already follow it; with nil it is written as 0 (fill it later with
    /// `fillChecksum`). The buffer must be exactly `bufferLength` bytes
    /// when a pseudo-header is given.
    public func emit(into header: TCPMutableHeader, pseudoHeader: IPPseudoHeader?) {
        precondition(options.count <= 40 && options.count & 3 == 0, "TCP options must be 4-byte multiples ≤ 40")
        let b = header.bytes
        precondition(b.count >= headerLength, "buffer too small for the TCP header")
        typealias F = TCPHeader.Field
        b.wireSetU16(sourcePort, F.sourcePort)
        b.wireSetU16(destinationPort, F.destinationPort)
        b.wireSetU32(sequenceNumber, F.sequenceNumber)
        b.wireSetU32(acknowledgmentNumber, F.acknowledgmentNumber)
        b.wireSetU8(UInt8(headerLength >> 2) << 4, F.dataOffset)
        b.wireSetU8(flags.rawValue, F.flags)
        b.wireSetU16(window, F.window)
        b.wireSetU16(0, F.checksum)
        b.wireSetU16(urgentPointer, F.urgentPointer)
        for (i, byte) in options.enumerated() { b[20 + i] = byte }
        if let pseudoHeader {
            precondition(b.count == bufferLength, "TCP checksum needs the buffer to be exactly the segment")
            header.fillChecksum(pseudoHeader: pseudoHeader)
        }
    }
}
